// "What produced this charge?" (SPEC §7) over HTTP: a usage overage line in a period with rollover
// from the previous period and an upgrade mid-period, the proration lines of that upgrade, and a
// late-usage adjustment line explained back to the late events of the original period; roles,
// tenancy, events pagination and the CLI report.
//
// (a) and (b) run in August and September 2027 (a 30-day September) so "now" can be chosen, as in
// test/invoicing/transitions.e2e-spec.ts; (c) runs in the two months before this one, because late
// usage is detected against the real clock.
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { LateUsageService, PeriodRatingService, SubscriptionBillingService } from '@closebook/invoicing';
import { replayLine, type AdjustmentInput, type Step } from '@closebook/rating';
import { ExplanationService, type ExplanationDocument } from '@closebook/traceability';
import { ExplainCommand } from '../../apps/cli/src/commands/explain.command';
import { bearer, startApi, type TestApi } from '../helpers/api';
import { DAY, ingestCalls, monthStart, rollUp, sendAll, sql, tenant, type InvoiceJson, type Tenant } from '../invoicing/fixtures';

const AUG = new Date(Date.UTC(2027, 7, 1));
const SEP = new Date(Date.UTC(2027, 8, 1));
const OCT = new Date(Date.UTC(2027, 9, 1));
const inSep = (day: number, hour = 12) => new Date(Date.UTC(2027, 8, day, hour));
const afterAug = new Date(Date.UTC(2027, 8, 1, 1));
const afterSep = new Date(Date.UTC(2027, 9, 1, 1));

describe('explanations: what produced this charge?', () => {
  let api: TestApi;
  const em = () => api.orm.em.fork() as EntityManager;
  const explainPath = (invoiceId: string, lineId: string, q = '') => `/v1/invoices/${invoiceId}/lines/${lineId}/explanation${q}`;
  async function explain(t: Tenant, invoiceId: string, lineId: string, q = ''): Promise<ExplanationDocument> {
    return (await t.get(explainPath(invoiceId, lineId, q)).expect(200)).body as ExplanationDocument;
  }
  const step = (doc: ExplanationDocument, name: string) => {
    const s = doc.steps.find((x) => x.name === name);
    if (!s) throw new Error(`no step ${name} in ${doc.steps.map((x) => x.name).join(', ')}`);
    return s;
  };

  // The upgrade scenario shared by (a), (b) and the access tests.
  let t: Tenant;
  let subscriptionId: string;
  let versions: { basic: string; pro: string };
  let september: InvoiceJson;
  let transition: InvoiceJson;

  beforeAll(async () => {
    api = await startApi();
    t = await tenant(api, 'Explanations');
    await t.product({ key: 'basic_fee', name: 'Basic fee', kind: 'recurring' });
    await t.product({ key: 'pro_fee', name: 'Pro fee', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    // basic: $20 incl. 1,000 calls at $0.01 over; pro: $50 incl. 10,000 calls at $0.005 over; both roll unused calls over one period.
    const basic = await t.plan('basic', [
      { product_key: 'basic_fee', price: { model: 'flat', amount: '20' } },
      { product_key: 'api_calls', allowance: '1000', rollover_enabled: true, rollover_expiry_periods: 1, price: { model: 'per_unit', unit_amount: '0.01' } },
    ]);
    const pro = await t.plan('pro', [
      { product_key: 'pro_fee', price: { model: 'flat', amount: '50' } },
      { product_key: 'api_calls', allowance: '10000', rollover_enabled: true, rollover_expiry_periods: 1, price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    versions = { basic: basic.id, pro: pro.id };
    const s = await t.subscribe('acme', 'basic', { started_at: AUG });
    subscriptionId = s.subscriptionId;
    const ingest = (count: number, at: Date) => ingestCalls(api, t, 'acme', count, at, inSep(30));
    // August: 400 of 1,000 used → 600 roll over into September.
    await ingest(400, new Date(Date.UTC(2027, 7, 10, 3)));
    const period = async (start: Date) =>
      (await sql<{ id: string }>(api, 'select id from billing_periods where subscription_id = ? and period_start = ?', [subscriptionId, start.toISOString()]))[0].id;
    await api.app.get(PeriodRatingService).ratePeriod(em(), await period(AUG), afterAug);
    // September: 2,000 calls on basic, the upgrade to pro on the 21st (10/30 days left), 4,123 calls on pro.
    await ingest(2_000, inSep(10, 3));
    const out = await api.app.get(SubscriptionBillingService).transition(em(), t.orgId, subscriptionId, { plan_key: 'pro' }, inSep(21));
    transition = await t.invoice(out.invoice!.id);
    await ingest(4_123, inSep(25, 3));
    const { invoice } = await api.app.get(PeriodRatingService).ratePeriod(em(), await period(SEP), afterSep);
    september = await t.invoice(invoice.id);
  });
  afterAll(() => api.close());

  it('(a) a usage overage line with rollover and an upgrade in the period: every step with its numbers, replayed', async () => {
    const overage = september.lines.find((l) => l.type === 'usage_overage')!;
    const doc = await explain(t, september.id, overage.id);

    expect(doc.line).toMatchObject({
      id: overage.id,
      type: 'usage_overage',
      product_key: 'api_calls',
      period: { start: SEP.toISOString(), end: OCT.toISOString() },
      quantity: '1523',
      unit: 'calls',
      unit_amount: '0.005',
      amount_exact: '7.615',
      amount: { amount: '7.62', currency: 'USD' },
    });
    expect(doc.invoice).toMatchObject({ id: september.id, kind: 'period', status: 'draft', period: { start: SEP.toISOString(), end: OCT.toISOString() } });
    expect(doc.customer).toMatchObject({ external_id: 'acme', name: 'acme' });
    // Overage is priced by the plan in force at the period end: pro v1, $0.005 per call.
    expect(doc.subscription.plan).toEqual({ plan_version_id: versions.pro, plan_key: 'pro', version: 1, name: 'pro' });
    expect(doc.price).toEqual({ model: 'per_unit', unit_amount: '0.005' });
    // The period's two segments with their plan versions.
    expect(doc.subscription.segments.map((s) => [s.plan_key, s.plan_version_id, s.from.slice(0, 10), s.to.slice(0, 10), s.fraction, s.transition])).toEqual([
      ['basic', versions.basic, '2027-09-01', '2027-09-21', '20/30 days', null],
      ['pro', versions.pro, '2027-09-21', '2027-10-01', '10/30 days', 'upgrade'],
    ]);

    // Usage 6,123 calls.
    expect(step(doc, 'usage')).toMatchObject({ op: 'input', result: '6123', text: expect.stringContaining('usage 6,123 calls') });
    // Prorata allowance: 1,000 × 20 days + 10,000 × 10 days = 120,000 allowance-days ÷ 30 = 4,000 (the upgrade floor is 1,000).
    expect(step(doc, 'segment_1_allowance_days')).toMatchObject({ inputs: { cycle_allowance: '1000', days: '20' }, result: '20000', text: expect.stringContaining('20/30 days') });
    expect(step(doc, 'segment_2_allowance_days')).toMatchObject({ inputs: { cycle_allowance: '10000', days: '10' }, result: '100000', text: expect.stringContaining('10/30 days') });
    expect(step(doc, 'prorata_allowance')).toMatchObject({ inputs: { dividend: '120000', divisor: '30' }, result: '4000' });
    expect(step(doc, 'floor_2').result).toBe('1000');
    expect(step(doc, 'period_allowance').result).toBe('4000');
    // Drawn: the 600 rolled over from August first, then 4,000 of September's own.
    expect(step(doc, 'grant_1_available')).toMatchObject({ result: '600', text: 'rollover grant carried from 2027-08: 600 calls available' });
    expect(step(doc, 'grant_1_drawn').result).toBe('600');
    expect(step(doc, 'grant_2_drawn')).toMatchObject({ inputs: { usage_left: '5523', available: '4000' }, result: '4000' });
    expect(step(doc, 'included_used')).toMatchObject({ result: '4600', text: 'allowance drawn 4,600 calls (incl. 600 rolled over from 2027-08)' });
    // Overage 6,123 − 4,600 = 1,523 × $0.005 = 7.615 → 7.62.
    expect(step(doc, 'overage_quantity')).toMatchObject({ inputs: { minuend: '6123', subtrahend: '4600' }, result: '1523' });
    expect(step(doc, 'billable_quantity').result).toBe('1523');
    expect(step(doc, 'amount_exact')).toMatchObject({ op: 'product', inputs: { quantity: '1523', unit_amount: '0.005' }, result: '7.615', text: 'amount: 1,523 calls × $0.005 = 7.615 (exact)' });
    expect(step(doc, 'amount')).toMatchObject({ op: 'round', result: '7.62', text: 'rounded half-up to 2 decimals: 7.615 → 7.62' });
    expect(doc.steps.map((s) => s.number)).toEqual(doc.steps.map((_, i) => i + 1));
    expect(doc.steps).toHaveLength(overage.steps.length);
    expect(doc.replay).toMatchObject({ matches_stored: true, ok: true, amount: '7.62', amount_exact: '7.615', stored_amount: '7.62', mismatches: [] });

    // The rollup with its count and digest at rating and now, and the events it covers.
    expect(doc.rollups).toEqual([
      expect.objectContaining({
        rollup_id: overage.rollups[0].rollup_id,
        product_key: 'api_calls',
        price_key: null,
        aggregation: 'count',
        meter: expect.objectContaining({ event_name: 'api.call' }),
        at_rating: { event_count: '6123', aggregate: '6123', digest: overage.rollups[0].digest },
        now: expect.objectContaining({ event_count: '6123', aggregate: '6123', digest: overage.rollups[0].digest }),
        changed_since_rating: false,
        via: 'line',
      }),
    ]);
    expect(doc.events.total).toBe('6123');
    expect(doc.events.data).toHaveLength(50);
    expect(doc.events.data[0]).toMatchObject({ event_name: 'api.call', late: false, rollup_id: overage.rollups[0].rollup_id });
    expect(doc.events.next_cursor).toEqual(expect.any(String));
    // No credit notes, late usage or exceptions for a draft.
    expect([doc.credit_notes, doc.late_usage, doc.exceptions, doc.disputes]).toEqual([[], [], [], []]);
    const [reg] = await sql<{ present: boolean }>(api, "select to_regclass('exceptions') is not null as present");
    expect(doc.exceptions_available).toBe(reg.present);

    // The included line of the same dimension draws the same allowance at 0.
    const included = september.lines.find((l) => l.type === 'usage_included')!;
    const inc = await explain(t, september.id, included.id);
    expect(inc.line).toMatchObject({ quantity: '4600', amount: { amount: '0.00' } });
    expect(step(inc, 'included_used').text).toBe('allowance drawn 4,600 calls (incl. 600 rolled over from 2027-08)');
    expect(inc.replay.matches_stored).toBe(true);

    // A base fee in advance: October at pro, the plan pinned when September's invoice was rated.
    const fee = september.lines.find((l) => l.type === 'base_fee')!;
    const feeDoc = await explain(t, september.id, fee.id);
    expect(feeDoc.line).toMatchObject({ period: { start: OCT.toISOString() }, amount: { amount: '50.00' } });
    expect(feeDoc.subscription.plan).toMatchObject({ plan_key: 'pro', version: 1, plan_version_id: versions.pro });
    expect(feeDoc.rollups).toEqual([]);
    expect(feeDoc.events).toEqual({ total: '0', data: [], next_cursor: null });
  });

  it('(b) the proration lines of the upgrade: the fraction 10/30 days, the segment and the amounts', async () => {
    expect(transition.lines.map((l) => l.type)).toEqual(['proration_credit', 'proration_charge']);
    const [creditLine, chargeLine] = transition.lines;

    const credit = await explain(t, transition.id, creditLine.id);
    expect(credit.invoice).toMatchObject({ kind: 'transition' });
    expect(credit.line).toMatchObject({
      type: 'proration_credit',
      period: { start: inSep(21, 0).toISOString(), end: OCT.toISOString() },
      amount: { amount: '-6.67', currency: 'USD' },
      proration: expect.objectContaining({ label: '10/30 days', days: 10, days_in_period: 30 }),
    });
    // The unused basic fee: 20 × 10 ÷ 30 = 6.666… credited, rounded half-up to −6.67.
    expect(step(credit, 'unused_fee')).toMatchObject({ op: 'prorate', inputs: { amount: '20', days: '10', days_in_period: '30' } });
    expect(step(credit, 'unused_fee').text).toMatch(/^proration 10\/30 days: \$20\.00 × 10 ÷ 30 = ~\$6\.666667$/);
    expect(step(credit, 'amount')).toMatchObject({ result: '-6.67', text: expect.stringMatching(/^rounded half-up to 2 decimals: ~−6\.666667 → -6\.67$/) });
    expect(credit.subscription.segments).toEqual([
      expect.objectContaining({ plan_key: 'basic', version: 1, plan_version_id: versions.basic, from: inSep(21, 0).toISOString(), to: OCT.toISOString(), fraction: '10/30 days', days: 10, days_in_period: 30 }),
    ]);
    expect(credit.subscription.plan).toMatchObject({ plan_key: 'basic', plan_version_id: versions.basic });
    expect(credit.source).toMatchObject({ type: 'subscription_change', subscription_change: { kind: 'plan', data: expect.objectContaining({ direction: 'upgrade', previous_plan_key: 'basic', plan_key: 'pro' }) } });
    expect(credit.replay.matches_stored).toBe(true);

    // The new pro fee for the same 10 days: 50 × 10 ÷ 30 = 16.666… → 16.67.
    const charge = await explain(t, transition.id, chargeLine.id);
    expect(charge.line).toMatchObject({ type: 'proration_charge', amount: { amount: '16.67' }, proration: expect.objectContaining({ label: '10/30 days' }) });
    expect(charge.steps.find((s) => s.op === 'prorate')).toMatchObject({ inputs: { amount: '50', days: '10', days_in_period: '30' }, text: expect.stringContaining('proration 10/30 days') });
    expect(charge.subscription.segments).toEqual([expect.objectContaining({ plan_key: 'pro', plan_version_id: versions.pro, fraction: '10/30 days' })]);
    expect(charge.replay).toMatchObject({ matches_stored: true, amount: '16.67' });
  });

  it('(c) a late-usage adjustment line, explained back to the late events of the original period', async () => {
    const t2 = await tenant(api, 'Explanations late usage');
    await t2.product({ key: 'starter_fee', name: 'Starter plan', kind: 'recurring' });
    await t2.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t2.plan('starter', [
      { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    const [p1, p2, p3] = [monthStart(-2), monthStart(-1), monthStart(0)];
    const s = await t2.subscribe('late', 'starter', { started_at: p1 });
    const periodId = async (start: Date) =>
      (await sql<{ id: string }>(api, 'select id from billing_periods where subscription_id = ? and period_start = ?', [s.subscriptionId, start.toISOString()]))[0].id;
    await sendAll(t2, t2.calls('late', 'api.call', 12_000, new Date(p1.getTime() + 4 * DAY)));
    const rated = await api.app.get(PeriodRatingService).ratePeriod(em(), await periodId(p1));
    const original = (await t2.post(`/v1/invoices/${rated.invoice.id}/finalize`, {}).expect(201)).body as InvoiceJson;
    const originalOverage = original.lines.find((l) => l.type === 'usage_overage')!;
    // 12,000 − 10,000 = 2,000 × $0.005 = 10.00.
    expect(originalOverage).toMatchObject({ quantity: '2000', amount: { amount: '10.00' } });
    // A credit note on it, to be found by the explanation.
    await t2.post(`/v1/invoices/${original.id}/credit-notes`, { reason: 'Goodwill', lines: [{ invoice_line_id: originalOverage.id, amount: '1.00' }] }).expect(201);

    // 1,000 events for the finalized period arrive late: recorded as late usage worth 1,000 × $0.005 = 5.00.
    const lateAt = new Date(p1.getTime() + 19 * DAY);
    await sendAll(t2, t2.calls('late', 'api.call', 1_000, lateAt));
    await rollUp(api, t2.orgId);
    let late: { id: string }[] = [];
    for (let i = 0; i < 50 && !late.length; i++) {
      await api.app.get(LateUsageService).watch(em(), new Date(), t2.orgId);
      late = await sql<{ id: string }>(api, 'select id from late_usage where invoice_id = ? and event_count = 13000', [original.id]);
      if (!late.length) await new Promise((r) => setTimeout(r, 100));
    }
    expect(late).toHaveLength(1);
    const itemId = await billLateUsage(t2.orgId, late[0].id);

    // The next period invoice rated takes the adjustment (a background period-end run may have rated
    // last month already: then this month's invoice does).
    let adjustment: { invoice: string; line: string } | null = null;
    for (const [start, now] of [[p2, new Date()], [p3, new Date(monthStart(1).getTime() + 3_600_000)]] as const) {
      const { invoice } = await api.app.get(PeriodRatingService).ratePeriod(em(), await periodId(start), now);
      const [row] = await sql<{ id: string }>(api, "select id from invoice_lines where invoice_id = ? and source_type = 'pending_item' and source_id = ?", [invoice.id, itemId]);
      if (row) {
        adjustment = { invoice: invoice.id, line: row.id };
        break;
      }
    }
    expect(adjustment).not.toBeNull();

    const doc = await explain(t2, adjustment!.invoice, adjustment!.line, `?events_from=${encodeURIComponent(lateAt.toISOString())}&events_limit=500`);
    expect(doc.line).toMatchObject({
      type: 'adjustment',
      product_key: 'api_calls',
      // Billed later, with the original service period.
      period: { start: p1.toISOString(), end: p2.toISOString() },
      amount: { amount: '5.00', currency: 'USD' },
    });
    expect(doc.replay.matches_stored).toBe(true);
    expect(doc.source).toMatchObject({
      type: 'pending_item',
      id: itemId,
      pending_item: { kind: 'adjustment', source_type: 'late_usage', source_id: late[0].id },
      late_usage_id: late[0].id,
      original_invoice: { id: original.id, number: original.number, status: 'finalized', period_start: p1.toISOString() },
    });
    // The late usage row: billed 12,000, now 13,000, +1,000 → 5.00; the re-rating current vs previous.
    expect(doc.late_usage).toEqual([
      expect.objectContaining({
        id: late[0].id,
        invoice_id: original.id,
        billed_quantity: '12000',
        previous_quantity: '12000',
        quantity: '13000',
        quantity_delta: '1000',
        amount: { amount: '5.00', currency: 'USD' },
        event_count: '13000',
        billed_by: { pending_item_id: itemId, invoice_id: adjustment!.invoice, invoice_line_id: adjustment!.line },
      }),
    ]);
    const overageOf = (side: 'current' | 'previous') => doc.late_usage[0].rerating[side].find((l) => l.line_key.startsWith('usage_overage'))!;
    // Current: 13,000 − 10,000 = 3,000 × $0.005 = 15.00; previous: 2,000 × $0.005 = 10.00; difference 5.00.
    expect(overageOf('current')).toMatchObject({ amount: '15.00' });
    expect(overageOf('current').steps.find((x) => x.name === 'usage')).toMatchObject({ result: '13000' });
    expect(overageOf('current').steps.find((x) => x.name === 'overage_quantity')).toMatchObject({ result: '3000' });
    expect(overageOf('previous')).toMatchObject({ amount: '10.00' });
    expect(overageOf('previous').steps.find((x) => x.name === 'overage_quantity')).toMatchObject({ result: '2000' });
    // The original period's rollup: 12,000 events at rating, 13,000 now.
    expect(doc.rollups).toEqual([
      expect.objectContaining({
        rollup_id: originalOverage.rollups[0].rollup_id,
        via: 'late_usage',
        at_rating: expect.objectContaining({ event_count: '12000', aggregate: '12000' }),
        now: expect.objectContaining({ event_count: '13000', aggregate: '13000' }),
        changed_since_rating: true,
      }),
    ]);
    // Its events, from the late ones' timestamp on: the 1,000 late events, flagged late (two pages of 500).
    expect(doc.events.total).toBe('13000');
    expect(doc.events.data).toHaveLength(500);
    expect(doc.events.data.every((e) => e.late && Date.parse(e.timestamp) >= lateAt.getTime())).toBe(true);
    const page2 = (await t2.get(`/v1/invoices/${adjustment!.invoice}/lines/${adjustment!.line}/events?from=${encodeURIComponent(lateAt.toISOString())}&limit=500&cursor=${doc.events.next_cursor}`).expect(200)).body;
    expect(page2.data).toHaveLength(500);
    expect(page2.next_cursor).toBeNull();
    expect(page2.data.every((e: { late: boolean }) => e.late)).toBe(true);
    // The original overage line: its credit note, its late usage and where it was billed.
    const orig = await explain(t2, original.id, originalOverage.id);
    expect(orig.credit_notes).toEqual([expect.objectContaining({ number: expect.stringMatching(/^CN-/), reason: 'Goodwill', amount: { amount: '1.00', currency: 'USD' } })]);
    expect(orig.late_usage).toEqual([expect.objectContaining({ id: late[0].id, billed_by: expect.objectContaining({ invoice_line_id: adjustment!.line }) })]);
    expect(orig.rollups[0]).toMatchObject({ at_rating: expect.objectContaining({ event_count: '12000' }), changed_since_rating: true });
    // Whatever the ledger holds for the invoice and the credit note is shown.
    const posted = await sql<{ id: string }>(api, "select id from journal_entries where organization_id = ? and ((source_type = 'invoice' and source_id = ?) or source_type = 'credit_note')", [t2.orgId, original.id]);
    expect(orig.ledger.entries.map((e) => e.id).sort()).toEqual(expect.arrayContaining(posted.map((p) => p.id).sort()));
  });

  /** LateUsageService.bill when present (finance's resolution), else the documented pending item by hand. */
  async function billLateUsage(orgId: string, lateUsageId: string): Promise<string> {
    const service = api.app.get(LateUsageService) as unknown as { bill?: (em: EntityManager, org: string, id: string) => Promise<{ pendingItem: { id: string } }> };
    if (typeof service.bill === 'function') return (await service.bill(em(), orgId, lateUsageId)).pendingItem.id;
    const [row] = await sql<{ subscription_id: string; amount: string; period_start: string; period_end: string; product_key: string; quantity_delta: string }>(
      api,
      `select subscription_id, amount::text as amount, to_json(period_start)#>>'{}' as period_start, to_json(period_end)#>>'{}' as period_end, product_key, quantity_delta::text as quantity_delta
       from late_usage where id = ?`,
      [lateUsageId],
    );
    const steps: Step[] = [{ op: 'input', name: 'late_quantity', inputs: { value: row.quantity_delta }, result: row.quantity_delta, note: 'late usage quantity' }];
    const payload: AdjustmentInput = {
      adjustment_id: lateUsageId,
      description: `Late usage of ${row.product_key}: ${row.quantity_delta} after invoicing`,
      amount: row.amount,
      period_start: new Date(row.period_start).toISOString(),
      period_end: new Date(row.period_end).toISOString(),
      product_key: row.product_key,
      quantity: row.quantity_delta,
      steps,
    };
    const id = randomUUID();
    await sql(
      api,
      `insert into invoice_pending_items (id, organization_id, subscription_id, kind, payload, billable_from, source_type, source_id, description)
       values (?, ?, ?, 'adjustment', ?::jsonb, now(), 'late_usage', ?, ?)`,
      [id, orgId, row.subscription_id, JSON.stringify(payload), lateUsageId, payload.description],
    );
    return id;
  }

  it('support, finance and auditor keys read it; an ingest key cannot; other organizations and bad ids are 404', async () => {
    const overage = september.lines.find((l) => l.type === 'usage_overage')!;
    for (const role of ['support', 'finance', 'auditor']) {
      const key = await t.key(role);
      const res = await api.http.get(explainPath(september.id, overage.id)).set(bearer(key)).expect(200);
      expect(res.body.line.id).toBe(overage.id);
    }
    const ingest = await t.key('ingest');
    await api.http.get(explainPath(september.id, overage.id)).set(bearer(ingest)).expect(403);
    await api.http.get(`/v1/invoices/${september.id}/lines/${overage.id}/events`).set(bearer(ingest)).expect(403);

    const other = await tenant(api, 'Explanations other');
    expect((await other.get(explainPath(september.id, overage.id)).expect(404)).body.error.code).toBe('not_found');
    await other.get(`/v1/invoices/${september.id}/lines/${overage.id}/events`).expect(404);
    // A line of another invoice, unknown and malformed ids.
    await t.get(explainPath(transition.id, overage.id)).expect(404);
    await t.get(explainPath(september.id, randomUUID())).expect(404);
    await t.get(explainPath('not-a-uuid', overage.id)).expect(404);
    await t.get(explainPath(september.id, 'not-a-uuid')).expect(404);
    // Bad queries are 400s with the field.
    expect((await t.get(explainPath(september.id, overage.id, '?events_limit=501')).expect(400)).body.error.field).toBe('events_limit');
    expect((await t.get(explainPath(september.id, overage.id, '?events_cursor=nope')).expect(400)).body.error.field).toBe('events_cursor');
    expect((await t.get(explainPath(september.id, overage.id, '?events_from=yesterday')).expect(400)).body.error.field).toBe('events_from');
    expect((await t.get(explainPath(september.id, overage.id, '?extra=1')).expect(400)).body.error).toMatchObject({ code: 'unknown_field', field: 'extra' });
  });

  it('shows the disputes and exceptions about the line, and who owns the escalation', async () => {
    const overage = september.lines.find((l) => l.type === 'usage_overage')!;
    const before = (await t.get(explainPath(september.id, overage.id)).expect(200)).body as ExplanationDocument;
    expect(before.exceptions_available).toBe(true);
    expect(before.disputes).toEqual([]);
    const support = await t.key('support');
    const dispute = await api.http
      .post('/v1/disputes')
      .set(bearer(support))
      .send({ invoice_id: september.id, invoice_line_id: overage.id, reason: 'The customer says the upgrade day was double counted' })
      .expect(201);
    const doc = (await api.http.get(explainPath(september.id, overage.id)).set(bearer(support)).expect(200)).body as ExplanationDocument;
    expect(doc.disputes.map((d) => d.id)).toEqual([dispute.body.id]);
    expect(doc.escalation).toMatchObject({ reason: 'open_dispute', key: 'disputes', owner: expect.any(String), escalation_contact: expect.any(String) });
  });

  it('events page by keyset cursor without gaps or repeats, and filter by time range and event id', async () => {
    const overage = september.lines.find((l) => l.type === 'usage_overage')!;
    const base = `/v1/invoices/${september.id}/lines/${overage.id}/events`;
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { data: { event_id: string; timestamp: string }[]; next_cursor: string | null; total: string } = (await t.get(`${base}?limit=500${cursor ? `&cursor=${cursor}` : ''}`).expect(200)).body;
      expect(res.total).toBe('6123');
      seen.push(...res.data.map((e) => e.event_id));
      cursor = res.next_cursor;
      pages++;
    } while (cursor && pages < 20);
    expect(pages).toBe(13);
    expect(seen).toHaveLength(6123);
    expect(new Set(seen).size).toBe(6123);
    // Only what the rollup covers: September's events of this subscription.
    const [{ n }] = await sql<{ n: number }>(api, "select count(*)::int as n from usage_events where organization_id = ? and ts >= ? and ts < ? and event_name = 'api.call'", [t.orgId, SEP.toISOString(), OCT.toISOString()]);
    expect(n).toBe(6123);

    // Time range: the 4,123 calls after the upgrade; through the explanation's own parameters too.
    const after = (await t.get(`${base}?from=${encodeURIComponent(inSep(21, 0).toISOString())}&limit=1`).expect(200)).body;
    expect(Date.parse(after.data[0].timestamp)).toBeGreaterThanOrEqual(inSep(25, 0).getTime());
    const before = await explain(t, september.id, overage.id, `?events_to=${encodeURIComponent(inSep(21, 0).toISOString())}&events_limit=500`);
    expect(before.events.data.every((e) => Date.parse(e.timestamp) < inSep(21, 0).getTime())).toBe(true);
    const one = (await t.get(`${base}?event_id=${encodeURIComponent(seen[42])}`).expect(200)).body;
    expect(one.data.map((e: { event_id: string }) => e.event_id)).toEqual([seen[42]]);
    expect(one.next_cursor).toBeNull();
  });

  it('every explained line replays, and the CLI prints the report for a person (and JSON with --json)', async () => {
    for (const [inv, l] of [...september.lines.map((x) => [september.id, x] as const), ...transition.lines.map((x) => [transition.id, x] as const)]) {
      const doc = await api.app.get(ExplanationService).explain(em(), t.orgId, inv, l.id);
      expect(replayLine(doc.steps).ok).toBe(true);
      expect(doc.replay.matches_stored).toBe(true);
    }
    const overage = september.lines.find((l) => l.type === 'usage_overage')!;
    const command = new ExplainCommand(api.app.get(ExplanationService), api.orm);
    const printed = await capture(() => command.run([], { invoice: september.id, line: overage.id, events: 3 }));
    for (const section of ['== Line', '== Customer, subscription, plan', '== Computation', '== Rollups', '== Events (3 shown of 6123)', '== Ledger entries', '== Credit notes, exceptions, disputes', '== Escalation']) {
      expect(printed).toContain(section);
    }
    expect(printed).toContain('allowance drawn 4,600 calls (incl. 600 rolled over from 2027-08)');
    expect(printed).toContain('rounded half-up to 2 decimals: 7.615 → 7.62');
    expect(printed).toMatch(/segment\s+2027-09-21 – 2027-09-30 pro v1: 10\/30 days \(upgrade\)/);
    expect(printed).toContain('replay        matches the stored amount');
    const json = JSON.parse(await capture(() => command.run([], { invoice: september.id, line: overage.id, org: t.orgId, json: true })));
    expect(json.line.amount).toEqual({ amount: '7.62', currency: 'USD' });
    await expect(command.run([], { invoice: randomUUID(), line: overage.id })).rejects.toThrow(/not found/);
  });
});

async function capture(fn: () => Promise<void>): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return out;
}
