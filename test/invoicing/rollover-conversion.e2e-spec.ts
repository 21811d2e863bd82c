// The allowance ledger over three periods (carry, cap, expiry) through the period-end pipeline, and
// a capped free tier (overage: block) converting to a paid plan over HTTP.
import { Decimal } from '@closebook/money';
import { startApi, type TestApi } from '../helpers/api';
import { DAY, monthStart, runPeriodEnd, sendAll, sql, startWorker, tenant } from './fixtures';

describe('rollover and conversion', () => {
  let api: TestApi;
  let w: Awaited<ReturnType<typeof startWorker>>;
  beforeAll(async () => {
    api = await startApi();
    w = await startWorker();
  });
  afterAll(async () => {
    await w.close();
    await api.close();
  });

  it('a rollover chain over three periods: carried units capped at 600, drawn first, expiring after one cycle', async () => {
    const t = await tenant(api, 'Rollover');
    await t.product({ key: 'fee', name: 'Plan fee', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('roll', [
      { product_key: 'fee', price: { model: 'flat', amount: '10' } },
      { product_key: 'api_calls', allowance: '1000', rollover_enabled: true, rollover_cap: '600', rollover_expiry_periods: 1, price: { model: 'per_unit', unit_amount: '0.01' } },
    ]);
    const [p1, p2, p3, p4] = [monthStart(-3), monthStart(-2), monthStart(-1), monthStart(0)];
    const s = await t.subscribe('acme', 'roll', { started_at: p1 });
    const at = (p: Date) => new Date(p.getTime() + 5 * DAY);
    await sendAll(t, [...t.calls('acme', 'api.call', 200, at(p1)), ...t.calls('acme', 'api.call', 900, at(p2)), ...t.calls('acme', 'api.call', 100, at(p3))]);
    await runPeriodEnd(api, w, t.orgId);

    const ledger = (await t.get(`/v1/subscriptions/${s.subscriptionId}/allowance-ledger?product=api_calls`).expect(200)).body.data as {
      grant_id: string;
      kind: string;
      quantity: string;
      granted_in_period: string;
      drawdowns: { period_start: string; drawn: string }[];
      expiry: { unused: string; carried: string; expired: string } | null;
      remaining: string;
      balanced: boolean;
    }[];
    const view = ledger.map((g) => ({
      kind: g.kind,
      from: g.granted_in_period.slice(0, 7),
      quantity: g.quantity,
      drawn: g.drawdowns.map((d) => d.drawn),
      expiry: g.expiry && [g.expiry.unused, g.expiry.carried, g.expiry.expired],
      remaining: g.remaining,
    }));
    const m = (d: Date) => d.toISOString().slice(0, 7);
    expect(view).toEqual([
      // P1: 200 used of 1,000; unused 800, carried min(600 cap, 800) = 600.
      { kind: 'period', from: m(p1), quantity: '1000', drawn: ['200'], expiry: ['800', '600', '200'], remaining: '0' },
      // P2: 900 used: the 600 carried first, then 300 of P2's own; 700 unused, 600 carried.
      { kind: 'period', from: m(p2), quantity: '1000', drawn: ['300'], expiry: ['700', '600', '100'], remaining: '0' },
      { kind: 'rollover', from: m(p2), quantity: '600', drawn: ['600'], expiry: ['0', '0', '0'], remaining: '0' },
      // P3: 100 used, all from the rollover of P2, whose other 500 expire; P3's own 1,000 unused, 600 carried into P4.
      { kind: 'period', from: m(p3), quantity: '1000', drawn: [], expiry: ['1000', '600', '400'], remaining: '0' },
      { kind: 'rollover', from: m(p3), quantity: '600', drawn: ['100'], expiry: ['500', '0', '500'], remaining: '0' },
      { kind: 'rollover', from: m(p4), quantity: '600', drawn: [], expiry: null, remaining: '600' },
    ]);
    expect(ledger.every((g) => g.balanced)).toBe(true);
    const rolled = await sql<{ payload: { carried: string; usable_from_period: string } }>(
      api,
      "select payload from outbox_messages where organization_id = ? and type = 'allowance.rolled_over' order by payload->>'usable_from_period'",
      [t.orgId],
    );
    expect(rolled.map((r) => [r.payload.carried, r.payload.usable_from_period.slice(0, 7)])).toEqual([['600', m(p2)], ['600', m(p3)], ['600', m(p4)]]);
    // Every period drew within its allowance: no overage on any invoice.
    const p3Invoice = await t.periodInvoice(s.subscriptionId, p3);
    expect(p3Invoice.lines.map((l) => l.type)).toEqual(['base_fee', 'usage_included']);
    // Metering's live allowance state reads the carried units from this ledger.
    const state = (await t.get(`/v1/customers/acme/subscriptions/${s.subscriptionId}/allowance-state`).expect(200)).body;
    expect(state.dimensions[0]).toMatchObject({ product_key: 'api_calls', included: '1000', rolled_over: '600' });
  });

  it('a capped free tier (overage: block) converting to a paid plan: preview, transition, conversion facts', async () => {
    const t = await tenant(api, 'Conversion');
    await t.product({ key: 'free_fee', name: 'Free plan', kind: 'recurring' });
    await t.product({ key: 'paid_fee', name: 'Paid plan', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('free', [
      { product_key: 'free_fee', price: { model: 'flat', amount: '0' } },
      { product_key: 'api_calls', allowance: '1000', overage: 'block', price: { model: 'per_unit', unit_amount: '0.01' } },
    ]);
    await t.plan('paid', [
      { product_key: 'paid_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    const lastMonth = monthStart(-1);
    const s = await t.subscribe('trial', 'free', { started_at: lastMonth });
    await sendAll(t, t.calls('trial', 'api.call', 1_500, new Date(lastMonth.getTime() + 3 * DAY)));
    await runPeriodEnd(api, w, t.orgId);
    const free = await t.periodInvoice(s.subscriptionId, lastMonth);
    // Capped: usage above the allowance is recorded on the invoice, never billed.
    expect(free.lines.map((l) => `${l.type} ${l.quantity} ${l.amount.amount}`)).toEqual(['base_fee 1 0.00', 'usage_included 1000 0.00', 'usage_overage 0 0.00']);
    expect((free.lines[2] as unknown as { meta: Record<string, unknown> }).meta).toMatchObject({ capped: true, unbilled_quantity: '500' });

    const countOf = async () => (await sql(api, 'select id from invoices where subscription_id = ?', [s.subscriptionId])).length;
    const invoicesBefore = await countOf();
    const preview = await t.post(`/v1/subscriptions/${s.subscriptionId}/transition-plan/preview`, { plan_key: 'paid' }).expect(201);
    expect(preview.body).toMatchObject({ direction: 'upgrade', timing: 'immediate', conversion: true, proration_strategy: 'prorated_immediately', from: { plan_key: 'free' }, to: { plan_key: 'paid' } });
    expect(await countOf()).toBe(invoicesBefore);
    expect(await sql(api, 'select id from subscription_changes where subscription_id = ?', [s.subscriptionId])).toHaveLength(0);

    const res = await t.post(`/v1/subscriptions/${s.subscriptionId}/transition-plan`, { plan_key: 'paid' }).expect(201);
    expect(res.body.change).toMatchObject({ kind: 'plan', status: 'applied', data: { conversion: true, direction: 'upgrade' } });
    expect(res.body.subscription.plan.key).toBe('paid');
    // The free fee is 0 (nothing to credit); the paid fee is charged for the rest of this month.
    const now = new Date();
    const cycleDays = Math.round((monthStart(1).getTime() - monthStart(0).getTime()) / DAY);
    const remaining = cycleDays - now.getUTCDate() + 1;
    const expected = new Decimal(49).times(remaining).div(cycleDays).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);
    const inv = await t.invoice(res.body.invoice.id);
    expect(inv.lines.map((l) => `${l.type} ${l.amount.amount} ${l.proration?.label}`)).toEqual([`proration_charge ${expected} ${remaining}/${cycleDays} days`]);
    expect(preview.body.immediate_invoice.total.amount).toBe(inv.total.amount);

    const outbox = await sql<{ type: string; payload: Record<string, unknown> }>(api, "select type, payload from outbox_messages where organization_id = ? and type like 'subscription.%' order by type", [t.orgId]);
    const days = Math.floor((now.getTime() - lastMonth.getTime()) / DAY);
    expect(outbox).toEqual([
      { type: 'subscription.converted', payload: expect.objectContaining({ cohort_month: lastMonth.toISOString().slice(0, 7), days_to_convert: days }) },
      { type: 'subscription.plan_changed', payload: expect.objectContaining({ direction: 'upgrade', from: expect.objectContaining({ plan_key: 'free' }), to: expect.objectContaining({ plan_key: 'paid' }) }) },
    ]);
    const analytics = (await t.get('/v1/analytics/conversions').expect(200)).body.data;
    expect(analytics).toEqual([
      { cohort_month: lastMonth.toISOString().slice(0, 7), subscriptions_started: 1, conversions: 1, conversion_rate: '1.0000', avg_days_to_convert: `${days}.00`, median_days_to_convert: `${days}.0` },
    ]);
  });
});
