// Plan, seat and cancellation transitions at the service level, in a 30-day month of the future
// (September 2027) so "now" can be chosen: the services take `now`, usage is ingested with the
// ingest service's clock, and no period-end scheduler ever touches these periods first.
//
// Every proration figure below is hand-computed on September (30 days). A change effective
// 2027-09-21T12:00Z applies from the start of that UTC day: days 21..30 remain = 10/30.
import type { EntityManager } from '@mikro-orm/postgresql';
import { PeriodRatingService, SubscriptionBillingService, InvoicesService, type Invoice } from '@closebook/invoicing';
import { SubscriptionsService } from '@closebook/subscriptions';
import { startApi, type TestApi } from '../helpers/api';
import { ingestCalls, sql, tenant, uid, type InvoiceJson, type Tenant } from './fixtures';

const SEP = new Date(Date.UTC(2027, 8, 1));
const OCT = new Date(Date.UTC(2027, 9, 1));
const at = (day: number, hour = 12) => new Date(Date.UTC(2027, 8, day, hour));
/** Just after September ended: when the period-end pipeline rates it. */
const afterSep = new Date(Date.UTC(2027, 9, 1, 1));

describe('transitions and proration (September 2027, 30 days)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  const em = () => api.orm.em.fork() as EntityManager;
  const billing = () => api.app.get(SubscriptionBillingService);
  const rating = () => api.app.get(PeriodRatingService);

  /** basic: $20 incl. 1,000 calls at $0.01 over; pro: $50 incl. 10,000 calls at $0.005 over; team: $30 + $10 per seat over 1. */
  async function setup(opts: { basicStrategy?: string } = {}) {
    const t = await tenant(api, 'Transitions');
    await t.product({ key: 'basic_fee', name: 'Basic fee', kind: 'recurring' });
    await t.product({ key: 'pro_fee', name: 'Pro fee', kind: 'recurring' });
    await t.product({ key: 'team_fee', name: 'Team fee', kind: 'recurring' });
    await t.product({ key: 'seats', name: 'Seats', kind: 'seat' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('basic', [
      { product_key: 'basic_fee', price: { model: 'flat', amount: '20' } },
      { product_key: 'api_calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.01' } },
    ], { ...(opts.basicStrategy ? { proration_strategy: opts.basicStrategy } : {}) });
    await t.plan('pro', [
      { product_key: 'pro_fee', price: { model: 'flat', amount: '50' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    await t.product({ key: 'mini_fee', name: 'Mini fee', kind: 'recurring' });
    await t.product({ key: 'sso', name: 'SSO', kind: 'addon' });
    await t.plan('plus', [
      { product_key: 'basic_fee', price: { model: 'flat', amount: '20' } },
      { product_key: 'sso', price: { model: 'flat', amount: '10' } },
      { product_key: 'api_calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.01' } },
    ]);
    await t.plan('mini', [{ product_key: 'mini_fee', price: { model: 'flat', amount: '5' } }]);
    await t.plan('team', [
      { product_key: 'team_fee', price: { model: 'flat', amount: '30' } },
      { product_key: 'seats', included_seats: 1, price: { model: 'per_unit', unit_amount: '10' } },
    ]);
    return t;
  }

  async function subscribe(t: Tenant, plan: string, seats?: number, addons?: { product_key: string }[]) {
    return t.subscribe(uid('cust'), plan, { started_at: SEP, ...(seats ? { seats } : {}), ...(addons ? { addons } : {}) });
  }

  const ingest = (t: Tenant, customer: string, count: number, day: number) => ingestCalls(api, t, customer, count, at(day, 3), at(30));

  async function periodOf(subscriptionId: string, start: Date) {
    const [row] = await sql<{ id: string }>(api, 'select id from billing_periods where subscription_id = ? and period_start = ?', [subscriptionId, start.toISOString()]);
    return row.id;
  }

  async function ratedSeptember(t: Tenant, subscriptionId: string): Promise<InvoiceJson> {
    const { invoice } = await rating().ratePeriod(em(), await periodOf(subscriptionId, SEP), afterSep);
    return t.invoice(invoice.id);
  }

  const lines = (inv: { lines: { type: string; amount: { amount: string } }[] }) => inv.lines.map((l) => `${l.type} ${l.amount.amount}`);

  it('prorated_immediately (the organization default): credit −20 × 10/30 = −6.67, charge 50 × 10/30 = 16.67, now', async () => {
    const t = await setup();
    const s = await subscribe(t, 'basic');
    const out = await billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'pro' }, at(21));
    // Upgrade (50 > 20): immediate by default.
    expect(out.change).toMatchObject({ kind: 'plan', data: { direction: 'upgrade', timing: 'immediate', conversion: false } });
    expect(out.change.effectiveAt.toISOString()).toBe(at(21).toISOString());
    const inv = await t.invoice(out.invoice!.id);
    expect(inv).toMatchObject({ kind: 'transition', status: 'draft', period_start: SEP.toISOString(), period_end: OCT.toISOString() });
    // 20 × 10 / 30 = 6.666… → 6.67 (credited); 50 × 10 / 30 = 16.666… → 16.67; 16.67 − 6.67 = 10.00.
    expect(lines(inv)).toEqual(['proration_credit -6.67', 'proration_charge 16.67']);
    expect(inv.lines.map((l) => l.proration?.label)).toEqual(['10/30 days', '10/30 days']);
    expect(inv.lines.map((l) => [l.period_start, l.period_end])).toEqual([
      [at(21, 0).toISOString(), OCT.toISOString()],
      [at(21, 0).toISOString(), OCT.toISOString()],
    ]);
    expect(inv.lines.every((l) => l.source?.type === 'subscription_change' && l.source.id === out.change.id)).toBe(true);
    expect(inv.total.amount).toBe('10.00');
    expect(out.deferred).toHaveLength(0);
    // The plan in force changed at once; subscription.plan_changed is in the outbox.
    const [sub] = await sql<{ plan_version_id: string }>(api, 'select plan_version_id from subscriptions where id = ?', [s.subscriptionId]);
    expect(sub.plan_version_id).toBe(out.change.data.plan_version_id);
    const outbox = await sql<{ type: string; payload: { direction: string } }>(api, "select type, payload from outbox_messages where organization_id = ? and type like 'subscription.%'", [t.orgId]);
    expect(outbox).toEqual([expect.objectContaining({ type: 'subscription.plan_changed', payload: expect.objectContaining({ direction: 'upgrade', proration_strategy: 'prorated_immediately' }) })]);
  });

  it("prorated_next_invoice (the current plan's strategy): the same two lines on September's period invoice", async () => {
    const t = await setup({ basicStrategy: 'prorated_next_invoice' });
    const s = await subscribe(t, 'basic');
    const out = await billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'pro' }, at(21));
    expect(out.invoice).toBeNull();
    expect(out.deferred.map((d) => d.kind)).toEqual(['deferred_line', 'deferred_line']);
    const inv = await ratedSeptember(t, s.subscriptionId);
    // October's fee at the plan in force (pro, 50.00) in advance, then the deferred −6.67 and +16.67: 60.00.
    expect(lines(inv)).toEqual(['base_fee 50.00', 'proration_credit -6.67', 'proration_charge 16.67']);
    expect(inv.lines[1].source?.type).toBe('pending_item');
    expect(inv.total.amount).toBe('60.00');
  });

  it('difference_immediately (requested): charge 50 − 20 = 30.00 now, unprorated', async () => {
    const t = await setup({ basicStrategy: 'prorated_next_invoice' });
    const s = await subscribe(t, 'basic');
    const out = await billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'pro', proration_strategy: 'difference_immediately' }, at(21));
    const inv = await t.invoice(out.invoice!.id);
    expect(lines(inv)).toEqual(['proration_charge 30.00']);
    expect(out.change.data.billing).toMatchObject({ strategy: 'difference_immediately', applied_strategy: 'difference_immediately' });
  });

  it('full_immediately (requested): the full new fee 50.00 now, the unused old fee credited −6.67: 43.33', async () => {
    const t = await setup();
    const s = await subscribe(t, 'basic');
    const out = await billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'pro', proration_strategy: 'full_immediately' }, at(21));
    const inv = await t.invoice(out.invoice!.id);
    expect(lines(inv)).toEqual(['proration_credit -6.67', 'proration_charge 50.00']);
    expect(inv.total.amount).toBe('43.33');
  });

  it("difference_immediately on a downgrade: 20 − 50 = −30.00, credited on the next period invoice", async () => {
    const t = await setup();
    const s = await subscribe(t, 'pro');
    const out = await billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'basic', timing: 'immediate', proration_strategy: 'difference_immediately' }, at(21));
    expect(out.change.data).toMatchObject({ direction: 'downgrade', timing: 'immediate' });
    expect(out.invoice).toBeNull();
    const inv = await ratedSeptember(t, s.subscriptionId);
    // October at basic (20.00) in advance, the −30.00 difference credited: −10.00.
    expect(lines(inv)).toEqual(['base_fee 20.00', 'proration_credit -30.00']);
    expect(inv.total.amount).toBe('-10.00');
  });

  it('an upgrade mid-period: the prorata allowance (1,000 × 20/30 + 10,000 × 10/30 = 4,000) avoids overage the old plan alone would bill', async () => {
    const t = await setup();
    const s = await subscribe(t, 'basic');
    await ingest(t, s.externalId, 5_000, 10);
    await billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'pro' }, at(21));
    const inv = await ratedSeptember(t, s.subscriptionId);
    // Basic alone: (5,000 − 1,000) × $0.01 = 40.00. Prorata: allowance-days 1,000 × 20 + 10,000 × 10 =
    // 120,000 ÷ 30 = 4,000 (the upgrade floor, 1,000, is lower); overage 1,000 at pro's $0.005 = 5.00.
    expect(inv.lines.map((l) => `${l.type} ${l.quantity} ${l.amount.amount}`)).toEqual(['base_fee 1 50.00', 'usage_included 4000 0.00', 'usage_overage 1000 5.00']);
    expect(inv.total.amount).toBe('55.00');
    expect(inv.lines[1].steps).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'prorata_allowance', result: '4000' })]));
  });

  it('a downgrade is scheduled for period end: nothing prorated, the next period billed at the new plan, applied when due', async () => {
    const t = await setup();
    const s = await subscribe(t, 'pro');
    await ingest(t, s.externalId, 12_000, 5);
    const preview = await billing().preview(em(), t.orgId, s.subscriptionId, { plan_key: 'basic' }, at(15));
    expect(preview).toMatchObject({ coveredByPeriodInvoice: true, immediate: null, deferredLines: [] });
    expect(preview.decision).toMatchObject({ direction: 'downgrade', timing: 'period_end' });
    const out = await billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'basic' }, at(15));
    expect(out.change.effectiveAt.toISOString()).toBe(OCT.toISOString());
    expect(out.change.appliedAt).toBeNull();
    expect(out.invoice).toBeNull();
    const detail = await api.app.get(SubscriptionsService).get(em(), t.orgId, s.subscriptionId, at(16));
    expect(detail.changes.filter((c) => c.kind === 'plan' && c.effectiveAt > at(16))).toHaveLength(1);

    const inv = await ratedSeptember(t, s.subscriptionId);
    // September's usage at pro (in force at period end): 2,000 over × $0.005 = 10.00; October at basic: 20.00.
    expect(inv.lines.map((l) => `${l.type} ${l.product_key} ${l.amount.amount}`)).toEqual(['base_fee basic_fee 20.00', 'usage_included api_calls 0.00', 'usage_overage api_calls 10.00']);
    expect(inv.lines[0].period_start).toBe(OCT.toISOString());

    // When it falls due the subscription re-pins basic; nothing is prorated (September's invoice billed basic).
    expect(await api.app.get(SubscriptionsService).applyDueChanges(em(), afterSep, 500, { subscriptionId: s.subscriptionId })).toBe(1);
    const [sub] = await sql<{ plan_version_id: string }>(api, 'select plan_version_id from subscriptions where id = ?', [s.subscriptionId]);
    expect(sub.plan_version_id).toBe(out.change.data.plan_version_id);
    const invoices = await t.invoices(`&subscription=${s.subscriptionId}`);
    expect(invoices.map((i) => i.kind).sort()).toEqual(['opening', 'period']);
    const [changed] = await sql<{ payload: { direction: string; timing: string } }>(api, "select payload from outbox_messages where organization_id = ? and type = 'subscription.plan_changed'", [t.orgId]);
    expect(changed.payload).toMatchObject({ direction: 'downgrade', timing: 'period_end' });
  });

  it('a seat change mid-period prorates like the flat fee: 3 more seats × $10 × 10/30 = 10.00 now', async () => {
    const t = await setup();
    const s = await subscribe(t, 'team', 1);
    const changed = await api.app.get(SubscriptionsService).changeSeats(em(), t.orgId, s.subscriptionId, { seats: 4, effective_at: at(21).toISOString() }, at(21));
    const [inv] = (await t.invoices(`&subscription=${s.subscriptionId}&kind=transition`)).map((i) => i);
    const full = await t.invoice(inv.id);
    // Extra seats 0 → 3: the seat fee goes 0 → 30.00 a month; 30 × 10 / 30 = 10.00.
    expect(lines(full)).toEqual(['proration_charge 10.00']);
    expect(full.lines[0].source).toEqual({ type: 'subscription_change', id: changed.change.id });
    // September's period invoice bills October's 3 extra seats in advance.
    const sep = await ratedSeptember(t, s.subscriptionId);
    expect(lines(sep)).toEqual(['base_fee 30.00', 'seat 30.00']);
  });

  it('canceling immediately credits the unused fee on a transition invoice and ends service', async () => {
    const t = await setup();
    const s = await subscribe(t, 'pro');
    const out = await billing().cancel(em(), t.orgId, s.subscriptionId, { at: 'immediately' }, at(21));
    const inv = await t.invoice(out.invoice!.id);
    // 50 × 10 / 30 = 16.666… → −16.67.
    expect(lines(inv)).toEqual(['proration_credit -16.67']);
    expect(out.detail.subscription).toMatchObject({ status: 'canceled' });
    expect(out.detail.periods.map((p) => [p.periodStart.toISOString(), p.periodEnd.toISOString()])).toEqual([[SEP.toISOString(), at(22, 0).toISOString()]]);
    // The last period invoice does not renew: usage only, no fee in advance.
    const last = await rating().ratePeriod(em(), await periodOf(s.subscriptionId, SEP), at(22, 1));
    expect((await t.invoice(last.invoice.id)).lines.filter((l) => l.type === 'base_fee')).toHaveLength(0);
  });

  it('refuses a transition into the same version, one before the current period, effective_at with period_end; finalizes once under concurrency', async () => {
    const t = await setup();
    const s = await subscribe(t, 'basic');
    await expect(billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'basic' }, at(21))).rejects.toMatchObject({ code: 'same_plan_version' });
    await expect(billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'pro', effective_at: at(2).toISOString() }, new Date(Date.UTC(2027, 9, 3)))).rejects.toMatchObject({
      code: 'effective_before_current_period',
    });
    await expect(billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'pro', timing: 'period_end', effective_at: at(21).toISOString() }, at(21))).rejects.toMatchObject({
      code: 'effective_at_with_period_end',
    });
    // The opening invoice is finalized once, whatever the number of calls.
    const [opening] = await t.invoices(`&subscription=${s.subscriptionId}&kind=opening`);
    const invoices = api.app.get(InvoicesService);
    const [a, b] = await Promise.all([invoices.finalize(em(), t.orgId, opening.id, at(2)), invoices.finalize(em(), t.orgId, opening.id, at(2))]);
    expect([a.transitioned, b.transitioned].sort()).toEqual([false, true]);
    expect(await sql(api, "select id from audit_log where resource_id = ? and action = 'invoice.finalized'", [opening.id])).toHaveLength(1);
    expect(((await invoices.find(em(), t.orgId, opening.id)) as Invoice).status).toBe('finalized');
  });

  it('add-ons the new plan does not offer end with the change: their unused fee is credited with the plan fee', async () => {
    const t = await setup();
    const s = await subscribe(t, 'plus', undefined, [{ product_key: 'sso' }]);
    const out = await billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'pro' }, at(21));
    expect(out.change.data.dropped_addons).toEqual([expect.objectContaining({ product_key: 'sso' })]);
    const inv = await t.invoice(out.invoice!.id);
    // Credits 20 × 10/30 = 6.67 and 10 × 10/30 = 3.33; charge 50 × 10/30 = 16.67: 6.67.
    expect(inv.lines.map((l) => `${l.type} ${l.product_key} ${l.amount.amount}`)).toEqual([
      'proration_credit basic_fee -6.67',
      'proration_credit sso -3.33',
      'proration_charge pro_fee 16.67',
    ]);
    expect(inv.total.amount).toBe('6.67');
    const sep = await ratedSeptember(t, s.subscriptionId);
    expect(lines(sep)).toEqual(['base_fee 50.00']);
  });

  it('a scheduled downgrade that drops an add-on can be canceled: the add-on range is reopened, nothing changes', async () => {
    const t = await setup();
    const s = await subscribe(t, 'plus', undefined, [{ product_key: 'sso' }]);
    const subs = api.app.get(SubscriptionsService);
    const out = await billing().transition(em(), t.orgId, s.subscriptionId, { plan_key: 'mini' }, at(15));
    expect(out.change.data).toMatchObject({ timing: 'period_end', direction: 'downgrade' });
    const during = await subs.get(em(), t.orgId, s.subscriptionId, at(15));
    expect(during.addons.map((a) => a.effectiveTo?.toISOString() ?? null)).toEqual([OCT.toISOString()]);
    const undone = await billing().cancelScheduledChange(em(), t.orgId, s.subscriptionId, out.change.id, at(16));
    expect(undone.change.canceledAt).toBeTruthy();
    expect(undone.detail.addons.map((a) => a.effectiveTo)).toEqual([null]);
    // Canceled changes are ignored: October is still billed at plus with SSO.
    const sep = await ratedSeptember(t, s.subscriptionId);
    expect(lines(sep)).toEqual(['base_fee 20.00', 'addon 10.00']);
    // Canceling twice answers it as it is; a change in effect cannot be canceled.
    await billing().cancelScheduledChange(em(), t.orgId, s.subscriptionId, out.change.id, at(17));
    const seats = await subs.changeSeats(em(), t.orgId, s.subscriptionId, { seats: 2, effective_at: at(17).toISOString() }, at(17));
    await expect(billing().cancelScheduledChange(em(), t.orgId, s.subscriptionId, seats.change.id, at(18))).rejects.toMatchObject({ code: 'change_not_scheduled' });
  });
});
