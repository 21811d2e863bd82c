// SPEC §10, end to end over HTTP: catalog → customer → subscription (started last month) → events
// via POST /v1/events → period end through the worker's BullMQ flow → finalized period invoice.
// Each period invoice carries last month's usage (in arrears) and this month's flat fees (in advance).
import { startApi, type TestApi } from '../helpers/api';
import { monthStart, runPeriodEnd, sendAll, startWorker, tenant, type InvoiceJson, type Tenant } from './fixtures';

const lastMonth = monthStart(-1);
const thisMonth = monthStart(0);
const mid = new Date(lastMonth.getTime() + 10 * 86_400_000);

describe('SPEC §10 worked examples, end to end', () => {
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

  async function finalizedPeriodInvoice(t: Tenant, subscriptionId: string): Promise<InvoiceJson> {
    await runPeriodEnd(api, w, t.orgId);
    const draft = await t.periodInvoice(subscriptionId, lastMonth);
    expect(draft.status).toBe('draft');
    const fin = await t.post(`/v1/invoices/${draft.id}/finalize`, {}).expect(201);
    expect(fin.body).toMatchObject({ status: 'finalized', transitioned: true, number: expect.stringMatching(/^INV-\d{6}$/) });
    return fin.body as InvoiceJson;
  }

  const summary = (inv: InvoiceJson) => inv.lines.map((l) => `${l.type} ${l.quantity} ${l.amount.amount}`);

  async function starter(t: Tenant) {
    await t.product({ key: 'starter_fee', name: 'Starter plan', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('starter', [
      { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
  }

  it('$49/mo incl. 10,000 API calls, $0.005 over, 25,000 calls: 49.00 + 15,000 × 0.005 = 124.00 (+ 20% tax = 148.80)', async () => {
    const t = await tenant(api, '§10 starter');
    await starter(t);
    const s = await t.subscribe('acme', 'starter', { started_at: lastMonth, tax_rate: '0.2' });
    await sendAll(t, t.calls('acme', 'api.call', 25_000, mid));
    const inv = await finalizedPeriodInvoice(t, s.subscriptionId);

    expect(summary(inv)).toEqual(['base_fee 1 49.00', 'usage_included 10000 0.00', 'usage_overage 15000 75.00']);
    const [fee, included, overage] = inv.lines;
    // Flat fees in advance: this month; usage in arrears: last month.
    expect([fee.period_start, fee.period_end]).toEqual([thisMonth.toISOString(), monthStart(1).toISOString()]);
    expect([overage.period_start, overage.period_end]).toEqual([lastMonth.toISOString(), thisMonth.toISOString()]);
    expect(overage).toMatchObject({ unit_amount: '0.005', description: 'API calls over 10,000 included: 15,000 × $0.005' });
    expect(included.amount).toEqual({ amount: '0.00', currency: 'USD' });
    expect(inv.subtotal).toEqual({ amount: '124.00', currency: 'USD' });
    expect(inv.tax_line).toMatchObject({ rate: '0.2', amount: { amount: '24.80', currency: 'USD' } });
    expect(inv.total).toEqual({ amount: '148.80', currency: 'USD' });
    // Each usage line points at the rollup it was rated from, with the rollup's count and digest.
    for (const l of [included, overage]) expect(l.rollups).toEqual([expect.objectContaining({ event_count: '25000', aggregate: '25000' })]);
    expect(inv.amount_due).toEqual({ amount: '148.80', currency: 'USD' });
  });

  it('same plan, 8,000 calls: 49.00, and an included-usage line of 8,000 at 0', async () => {
    const t = await tenant(api, '§10 starter under');
    await starter(t);
    const s = await t.subscribe('beta', 'starter', { started_at: lastMonth });
    await sendAll(t, t.calls('beta', 'api.call', 8_000, mid));
    const inv = await finalizedPeriodInvoice(t, s.subscriptionId);
    expect(summary(inv)).toEqual(['base_fee 1 49.00', 'usage_included 8000 0.00']);
    expect(inv.lines[1].description).toContain('8,000');
    expect(inv.tax_line).toBeNull();
    expect([inv.subtotal.amount, inv.tax.amount, inv.total.amount]).toEqual(['49.00', '0.00', '49.00']);
  });

  it('$99/mo incl. 3 seats, $15 per extra seat, 12 seats: 99.00 + 9 × 15 = 234.00', async () => {
    const t = await tenant(api, '§10 seats');
    await t.product({ key: 'pro_fee', name: 'Pro plan', kind: 'recurring' });
    await t.product({ key: 'seats', name: 'Seats', kind: 'seat' });
    await t.plan('pro', [
      { product_key: 'pro_fee', price: { model: 'flat', amount: '99' } },
      { product_key: 'seats', included_seats: 3, price: { model: 'per_unit', unit_amount: '15' } },
    ]);
    const s = await t.subscribe('gamma', 'pro', { started_at: lastMonth, seats: 12 });
    const inv = await finalizedPeriodInvoice(t, s.subscriptionId);
    expect(summary(inv)).toEqual(['base_fee 1 99.00', 'seat 9 135.00']);
    expect(inv.lines[1].description).toBe('Seats over 3 included: 9 × $15.00 (monthly)');
    expect(inv.total.amount).toBe('234.00');
  });

  it('$20 per user, 5 GB per user included, $2/GB over, 10 users, 80 GB: 200.00 + (80 − 50) × 2 = 260.00', async () => {
    const t = await tenant(api, '§10 per seat');
    await t.product({ key: 'users', name: 'Users', kind: 'seat' });
    await t.product({ key: 'storage', name: 'Storage', kind: 'metered', unit: 'GB', meter: { event_name: 'storage.used', aggregation: 'sum', property: 'gb' } });
    await t.plan('team', [
      { product_key: 'users', included_seats: 0, price: { model: 'per_unit', unit_amount: '20' } },
      { product_key: 'storage', allowance: '5', allowance_basis: 'per_seat', price: { model: 'per_unit', unit_amount: '2' } },
    ]);
    const s = await t.subscribe('delta', 'team', { started_at: lastMonth, seats: 10 });
    // 80 GB in four events of 20 GB.
    await sendAll(t, t.calls('delta', 'storage.used', 4, mid, { gb: '20' }));
    const inv = await finalizedPeriodInvoice(t, s.subscriptionId);
    expect(summary(inv)).toEqual(['seat 10 200.00', 'usage_included 50 0.00', 'usage_overage 30 60.00']);
    expect(inv.total.amount).toBe('260.00');
  });

  it('Retainer $199 incl. 5 h, $150/h over and a $100 incident on demand, 8 h + 1 incident: 199 + 450 + 100 = 749.00', async () => {
    const t = await tenant(api, '§10 retainer');
    await t.product({ key: 'retainer', name: 'Retainer', kind: 'recurring' });
    await t.product({ key: 'hours', name: 'Consulting hours', kind: 'metered', unit: 'h', meter: { event_name: 'consulting.logged', aggregation: 'sum', property: 'hours' } });
    await t.product({ key: 'incident', name: 'Incident response', kind: 'one_time' });
    await t.plan('retainer', [
      { product_key: 'retainer', price: { model: 'flat', amount: '199' } },
      { product_key: 'hours', allowance: '5', price: { model: 'per_unit', unit_amount: '150' } },
    ]);
    const s = await t.subscribe('epsilon', 'retainer', { started_at: lastMonth });
    await sendAll(t, t.calls('epsilon', 'consulting.logged', 2, mid, { hours: '4' }));
    const charge = await t
      .post(`/v1/subscriptions/${s.subscriptionId}/charges`, { description: 'Incident response', quantity: '1', unit_amount: '100', date: mid.toISOString(), product_key: 'incident' })
      .expect(201);
    const inv = await finalizedPeriodInvoice(t, s.subscriptionId);
    expect(summary(inv)).toEqual(['base_fee 1 199.00', 'usage_included 5 0.00', 'usage_overage 3 450.00', 'on_demand 1 100.00']);
    expect(inv.lines[3]).toMatchObject({ source: { type: 'on_demand_charge', id: charge.body.id }, period_start: new Date(Date.UTC(mid.getUTCFullYear(), mid.getUTCMonth(), mid.getUTCDate())).toISOString() });
    expect(inv.total.amount).toBe('749.00');
  });
});
