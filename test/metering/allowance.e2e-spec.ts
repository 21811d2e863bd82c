import type { EntityManager } from '@mikro-orm/postgresql';
import { RollupsService } from '@closebook/metering';
import { ratePeriodInvoice } from '@closebook/rating';
import { startApi, bearer, type TestApi } from '../helpers/api';
import { monthStart, rollUp, sql, tenant, uid, ymd, type Tenant } from './fixtures';

describe('allowance state', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  const periodStart = monthStart(-1);
  const periodEnd = monthStart(0);
  const at = (i: number) => new Date(periodStart.getTime() + 60_000 + (i % 1_000_000) * 1000).toISOString();

  /** `n` events of `name`, each with `properties`, for `customer`, in last month's period. */
  const many = (customer: string, name: string, n: number, properties: Record<string, unknown> = {}) =>
    Array.from({ length: n }, (_, i) => ({ event_id: uid(), customer_id: customer, event_name: name, timestamp: at(i), properties }));

  async function send(t: Tenant, events: unknown[]) {
    for (let i = 0; i < events.length; i += 10_000) {
      const res = await t.send(events.slice(i, i + 10_000)).expect(200);
      expect(res.body.rejected).toEqual([]);
    }
  }

  const state = async (t: Tenant, customer: string, sub: string, period: Date | null = periodStart, key?: string) =>
    (
      await api.http
        .get(`/v1/customers/${customer}/subscriptions/${sub}/allowance-state${period ? `?period=${ymd(period)}` : ''}`)
        .set(bearer(key ?? t.adminKey))
        .expect(200)
    ).body;

  const dim = (body: { dimensions: { product_key: string; price_key: string | null }[] }, product: string, key: string | null = null) =>
    body.dimensions.find((d) => d.product_key === product && d.price_key === key);

  it('SPEC §10: $49 incl. 10,000 calls, $0.005 over, 25,000 calls → 15,000 over, 75.00', async () => {
    const t = await tenant(api);
    await t.product({ key: 'starter_fee', name: 'Starter plan', kind: 'recurring' });
    await t.meter({ key: 'api_calls', name: 'API calls', event_name: 'api.call', aggregation: 'count', unit: 'calls' });
    await t.plan('starter', [
      { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    const { subscriptionId } = await t.subscribe('acme', 'starter', { started_at: periodStart });
    await send(t, many('acme', 'api.call', 25_000));
    await rollUp(api, t.orgId);
    const body = await state(t, 'acme', subscriptionId, periodStart, await t.key('support'));
    expect(body).toMatchObject({
      subscription_id: subscriptionId,
      period: { start: periodStart.toISOString(), end: periodEnd.toISOString() },
      estimate: true,
      // Other suites' workers share this database and may re-mark the pair dirty in between; the
      // figures are the same either way (the 'live' path is tested on its own below).
      source: expect.stringMatching(/^(rollups|live)$/),
      currency: 'USD',
      overage_so_far: { amount: '75.00', currency: 'USD' },
      unpriced: [],
    });
    expect(Date.parse(body.as_of)).toBeGreaterThan(Date.now() - 60_000);
    expect(body.dimensions).toEqual([
      {
        product_key: 'api_calls',
        product_name: 'API calls',
        price_key: null,
        unit: 'calls',
        included: '10000',
        rolled_over: '0',
        used: '25000',
        remaining: '0',
        percent_used: '250.00',
        overage_quantity: '15000',
        billable_quantity: '15000',
        billable_usage: { amount: '75.00', currency: 'USD' },
        capped: false,
        overage_mode: 'bill',
      },
    ]);
  });

  /** SPEC §10's team plan: $20 per user, 5 GB of storage included per user, $2 per GB over. */
  async function perSeatStorageTenant() {
    const t = await tenant(api);
    await t.product({ key: 'users', name: 'Users', kind: 'seat', unit: 'user' });
    await t.meter({ key: 'storage', name: 'Storage', event_name: 'storage.used', aggregation: 'sum', property: 'gb', unit: 'GB' });
    await t.plan('team', [
      { product_key: 'users', included_seats: 0, price: { model: 'per_unit', unit_amount: '20' } },
      { product_key: 'storage', allowance: '5', allowance_basis: 'per_seat', price: { model: 'per_unit', unit_amount: '2' } },
    ]);
    return t;
  }

  it('SPEC §10: 5 GB per user × 10 users, 80 GB → 30 GB over at $2 = 60.00 (per-seat allowance)', async () => {
    const t = await perSeatStorageTenant();
    const { subscriptionId } = await t.subscribe('team-co', 'team', { seats: 10, started_at: periodStart });
    await send(t, many('team-co', 'storage.used', 32, { gb: '2.5' }));
    await rollUp(api, t.orgId);
    const d = dim(await state(t, 'team-co', subscriptionId), 'storage');
    expect(d).toMatchObject({ included: '50', used: '80', remaining: '0', percent_used: '160.00', overage_quantity: '30', billable_usage: { amount: '60.00', currency: 'USD' } });
  });

  it('prices overage by graduated tiers (each segment at its rate) or by volume (the reached tier prices all)', async () => {
    const t = await tenant(api);
    await t.meter({ key: 'calls', event_name: 'api.call', aggregation: 'sum', property: 'n', unit: 'calls' });
    const tiers = [
      { up_to: '1000', unit_amount: '0.10' },
      { up_to: null, unit_amount: '0.05' },
    ];
    await t.plan('grad', [{ product_key: 'calls', allowance: '500', price: { model: 'graduated', tiers } }]);
    await t.plan('vol', [{ product_key: 'calls', allowance: '500', price: { model: 'volume', tiers } }]);
    const g = await t.subscribe('g', 'grad', { started_at: periodStart });
    const v = await t.subscribe('v', 'vol', { started_at: periodStart });
    await send(t, [...many('g', 'api.call', 4, { n: 500 }), ...many('v', 'api.call', 4, { n: '500' })]);
    await rollUp(api, t.orgId);
    // 2,000 used, 500 included → 1,500 over: graduated 1,000 × 0.10 + 500 × 0.05 = 125.00; volume 1,500 × 0.05 = 75.00.
    expect(dim(await state(t, 'g', g.subscriptionId), 'calls')).toMatchObject({ overage_quantity: '1500', billable_usage: { amount: '125.00' } });
    expect(dim(await state(t, 'v', v.subscriptionId), 'calls')).toMatchObject({ overage_quantity: '1500', billable_usage: { amount: '75.00' } });
  });

  it('prices overage by started packages ($0.10 per 1,000 calls)', async () => {
    const t = await tenant(api);
    await t.meter({ key: 'calls', event_name: 'api.call', aggregation: 'sum', property: 'n', unit: 'calls' });
    await t.plan('pkg', [{ product_key: 'calls', allowance: '10000', price: { model: 'package', package_size: '1000', package_amount: '0.10' } }]);
    const { subscriptionId } = await t.subscribe('p', 'pkg', { started_at: periodStart });
    await send(t, many('p', 'api.call', 3, { n: 4115 }));
    await rollUp(api, t.orgId);
    // 12,345 − 10,000 = 2,345 over → 3 started packages → 0.30.
    const body = await state(t, 'p', subscriptionId);
    expect(dim(body, 'calls')).toMatchObject({ used: '12345', overage_quantity: '2345', billable_usage: { amount: '0.30' } });
    expect(body.overage_so_far).toEqual({ amount: '0.30', currency: 'USD' });
  });

  it('keeps one allowance and price per key (prod vs preview) and reports unpriced usage apart', async () => {
    const t = await tenant(api);
    await t.meter({ key: 'bandwidth', name: 'Bandwidth', event_name: 'cdn.transfer', aggregation: 'sum', property: 'gb', unit: 'GB', price_key_label: 'environment' });
    await t.plan('keyed', [
      {
        product_key: 'bandwidth',
        keyed_prices: [
          { key: 'prod', price: { model: 'per_unit', unit_amount: '0.10' }, allowance: '100' },
          { key: 'preview', price: { model: 'per_unit', unit_amount: '0.02' }, allowance: '500' },
        ],
      },
    ]);
    const { subscriptionId } = await t.subscribe('k', 'keyed', { started_at: periodStart });
    await send(t, [
      ...many('k', 'cdn.transfer', 3, { gb: 50, environment: 'prod' }),
      ...many('k', 'cdn.transfer', 4, { gb: '100', environment: 'preview' }),
      ...many('k', 'cdn.transfer', 1, { gb: 7, environment: 'staging' }),
      ...many('k', 'cdn.transfer', 2, { gb: 1 }),
    ]);
    await rollUp(api, t.orgId);
    const body = await state(t, 'k', subscriptionId);
    expect(dim(body, 'bandwidth', 'prod')).toMatchObject({ included: '100', used: '150', percent_used: '150.00', overage_quantity: '50', billable_usage: { amount: '5.00' } });
    expect(dim(body, 'bandwidth', 'preview')).toMatchObject({ included: '500', used: '400', remaining: '100', percent_used: '80.00', overage_quantity: '0', billable_usage: { amount: '0.00' } });
    expect(body.overage_so_far).toEqual({ amount: '5.00', currency: 'USD' });
    expect(body.unpriced).toEqual([
      { product_key: 'bandwidth', price_key: '', quantity: '2', code: 'price_key_required', reason: expect.any(String) },
      { product_key: 'bandwidth', price_key: 'staging', quantity: '7', code: 'unpriced_usage', reason: expect.any(String) },
    ]);
  });

  it('caps a block (free tier) dimension: overage recorded, never billed, capped true', async () => {
    const t = await tenant(api);
    await t.meter({ key: 'build_minutes', event_name: 'build.finished', aggregation: 'sum', property: 'minutes', unit: 'build-minutes' });
    await t.plan('free', [{ product_key: 'build_minutes', allowance: '1000', overage: 'block', price: { model: 'per_unit', unit_amount: '0.01' } }]);
    const { subscriptionId } = await t.subscribe('f', 'free', { started_at: periodStart });
    await send(t, many('f', 'build.finished', 3, { minutes: 500 }));
    await rollUp(api, t.orgId);
    const body = await state(t, 'f', subscriptionId);
    expect(dim(body, 'build_minutes')).toMatchObject({
      included: '1000',
      used: '1500',
      overage_quantity: '500',
      billable_quantity: '0',
      billable_usage: { amount: '0.00', currency: 'USD' },
      capped: true,
      overage_mode: 'block',
    });
    expect(body.overage_so_far.amount).toBe('0.00');
  });

  it('applies the plan version allowance_multiplier and prorates a partial first period', async () => {
    const t = await tenant(api);
    await t.meter({ key: 'calls', event_name: 'api.call', aggregation: 'count', unit: 'calls' });
    await t.plan('yearly', [{ product_key: 'calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.01' } }], { allowance_multiplier: '1.2' });
    const full = await t.subscribe('full', 'yearly', { started_at: periodStart });
    expect(dim(await state(t, 'full', full.subscriptionId), 'calls')).toMatchObject({ included: '1200', used: '0', percent_used: '0.00' });
    // Started on day 11 of the month: the first period is [day 11, next 1st), its allowance days/cycle days.
    const start = new Date(periodStart.getTime() + 10 * 86_400_000);
    const part = await t.subscribe('part', 'yearly', { started_at: start });
    const days = Math.round((periodEnd.getTime() - start.getTime()) / 86_400_000);
    const cycleDays = Math.round((periodEnd.getTime() - periodStart.getTime()) / 86_400_000);
    const body = await state(t, 'part', part.subscriptionId, start);
    expect(body.period).toEqual({ start: start.toISOString(), end: periodEnd.toISOString() });
    const included = Number((dim(body, 'calls') as unknown as { included: string }).included);
    expect(included).toBeCloseTo((1200 * days) / cycleDays, 6);
  });

  it('prorates a per-seat allowance over a seat change inside the period, exactly as the period invoice will', async () => {
    const t = await tenant(api);
    await t.product({ key: 'users', name: 'Users', kind: 'seat', unit: 'user' });
    await t.meter({ key: 'storage', name: 'Storage', event_name: 'storage.used', aggregation: 'sum', property: 'gb', unit: 'GB' });
    const products = [
      { product_key: 'users', included_seats: 0, price: { model: 'per_unit', unit_amount: '20' } },
      { product_key: 'storage', allowance: '5', allowance_basis: 'per_seat', price: { model: 'per_unit', unit_amount: '2' } },
    ];
    await t.plan('team', products);
    const { subscriptionId } = await t.subscribe('grow', 'team', { seats: 10, started_at: periodStart });
    const changeAt = new Date();
    await t.post(`/v1/subscriptions/${subscriptionId}/seats`, { seats: 20, effective_at: changeAt.toISOString() }).expect(201);
    await send(t, [{ event_id: uid(), customer_id: 'grow', event_name: 'storage.used', timestamp: new Date(Date.now() - 1000).toISOString(), properties: { gb: '120.5' } }]);
    await rollUp(api, t.orgId);
    const body = await state(t, 'grow', subscriptionId, null);
    expect(body.period.start).toBe(periodEnd.toISOString());

    const doc = (await t.get(`/v1/plans/team/versions/1`).expect(200)).body.document;
    const invoice = ratePeriodInvoice({
      subscription_id: subscriptionId,
      subscription_start: periodStart.toISOString(),
      period: body.period,
      segments: [
        { from: periodStart.toISOString(), plan: doc, seats: 10 },
        { from: changeAt.toISOString(), plan: doc, seats: 20 },
      ],
      usage: [{ product_key: 'storage', quantity: '120.5' }],
    });
    expect(body.dimensions.map(({ product_name: _n, overage_mode: _o, ...d }: Record<string, unknown>) => d)).toEqual(invoice.allowance);
    expect(body.overage_so_far.amount).toBe(invoice.overage_total);
  });

  it('rolls up the products of every plan in force during the period and agrees with the upcoming invoice after a mid-period upgrade', async () => {
    const t = await tenant(api);
    await t.product({ key: 'fee', name: 'Fee', kind: 'recurring' });
    await t.meter({ key: 'calls', name: 'API calls', event_name: 'api.call', aggregation: 'count', unit: 'calls' });
    await t.meter({ key: 'legacy', name: 'Legacy exports', event_name: 'export.done', aggregation: 'count', unit: 'exports' });
    await t.plan('basic', [
      { product_key: 'fee', price: { model: 'flat', amount: '10' } },
      { product_key: 'calls', allowance: '10', price: { model: 'per_unit', unit_amount: '1' } },
      { product_key: 'legacy', allowance: '2', price: { model: 'per_unit', unit_amount: '3' } },
    ]);
    await t.plan('premium', [
      { product_key: 'fee', price: { model: 'flat', amount: '50' } },
      { product_key: 'calls', allowance: '100', price: { model: 'per_unit', unit_amount: '0.5' } },
    ]);
    const { subscriptionId } = await t.subscribe('up', 'basic', { started_at: periodStart });
    const current = monthStart(0);
    const before = new Date(Math.max(current.getTime(), Date.now() - 3_600_000));
    await send(t, [
      ...Array.from({ length: 5 }, () => ({ event_id: uid(), customer_id: 'up', event_name: 'export.done', timestamp: before.toISOString() })),
      ...Array.from({ length: 30 }, () => ({ event_id: uid(), customer_id: 'up', event_name: 'api.call', timestamp: before.toISOString() })),
    ]);
    const moved = await t.post(`/v1/subscriptions/${subscriptionId}/transition-plan`, { plan_key: 'premium', timing: 'immediate' });
    expect(moved.status).toBe(201);
    await rollUp(api, t.orgId);
    const usage = (await t.get(`/v1/subscriptions/${subscriptionId}/usage`).expect(200)).body;
    expect(usage.data.map((r: { product_key: string; count: string }) => [r.product_key, r.count]).sort()).toEqual([
      ['calls', '30'],
      ['legacy', '5'],
    ]);
    const body = await state(t, 'up', subscriptionId, null);
    expect(dim(body, 'legacy')).toMatchObject({ used: '5', overage_quantity: '3', billable_usage: { amount: '9.00' } });
    const upcoming = (await t.get(`/v1/subscriptions/${subscriptionId}/upcoming-invoice`).expect(200)).body;
    expect(body.dimensions.map(({ product_name: _n, overage_mode: _o, ...d }: Record<string, unknown>) => d)).toEqual(upcoming.allowance);
  });

  it('emits allowance.threshold_reached once at 80% and once at 100%, in the rollup transaction', async () => {
    const t = await tenant(api);
    await t.meter({ key: 'calls', event_name: 'api.call', aggregation: 'count', unit: 'calls' });
    await t.plan('small', [{ product_key: 'calls', allowance: '100', price: { model: 'per_unit', unit_amount: '0.01' } }]);
    const { subscriptionId } = await t.subscribe('th', 'small', { started_at: periodStart });
    const outbox = () =>
      sql<{ payload: { threshold: number; used: string; product_key: string; subscription_id: string } }>(
        api,
        `select payload from outbox_messages where organization_id = ? and type = 'allowance.threshold_reached' order by created_at`,
        [t.orgId],
      );
    await send(t, many('th', 'api.call', 79));
    await rollUp(api, t.orgId);
    expect(await outbox()).toHaveLength(0);
    await send(t, many('th', 'api.call', 1));
    await rollUp(api, t.orgId);
    expect((await outbox()).map((r) => r.payload.threshold)).toEqual([80]);
    await send(t, many('th', 'api.call', 19));
    await rollUp(api, t.orgId);
    expect((await outbox()).map((r) => r.payload.threshold)).toEqual([80]);
    await send(t, many('th', 'api.call', 1));
    await rollUp(api, t.orgId);
    await send(t, many('th', 'api.call', 30));
    await rollUp(api, t.orgId);
    await rollUp(api, t.orgId);
    const rows = await outbox();
    expect(rows.map((r) => r.payload.threshold)).toEqual([80, 100]);
    expect(rows[1].payload).toMatchObject({ subscription_id: subscriptionId, product_key: 'calls', used: '100' });
  });

  it('is fresh: events not yet rolled up are counted live, and the answer says so', async () => {
    const t = await tenant(api);
    await t.meter({ key: 'calls', event_name: 'api.call', aggregation: 'count', unit: 'calls' });
    await t.plan('starter', [{ product_key: 'calls', allowance: '10', price: { model: 'per_unit', unit_amount: '1' } }]);
    const { subscriptionId } = await t.subscribe('fresh', 'starter', { started_at: periodStart });
    await send(t, many('fresh', 'api.call', 12));
    const live = await state(t, 'fresh', subscriptionId);
    expect(live).toMatchObject({ source: 'live', estimate: true, overage_so_far: { amount: '2.00' } });
    expect(dim(live, 'calls')).toMatchObject({ used: '12', overage_quantity: '2' });
    await rollUp(api, t.orgId);
    const rolled = await state(t, 'fresh', subscriptionId);
    expect(rolled.source).toBe('rollups');
    expect(dim(rolled, 'calls')).toMatchObject({ used: '12' });
  });

  it('defaults to the current period, finds the customer by id or external id, and answers 404 across tenants', async () => {
    const t = await tenant(api);
    await t.meter({ key: 'calls', event_name: 'api.call', aggregation: 'count', unit: 'calls' });
    await t.plan('starter', [{ product_key: 'calls', allowance: '10', price: { model: 'per_unit', unit_amount: '1' } }]);
    const a = await t.subscribe('a', 'starter', { started_at: periodStart });
    const b = await t.subscribe('b', 'starter', { started_at: periodStart });
    const current = await state(t, 'a', a.subscriptionId, null, await t.key('auditor'));
    expect(current.period.start).toBe(periodEnd.toISOString());
    await state(t, a.customerId, a.subscriptionId, null, await t.key('finance'));
    // Another customer's subscription, another tenant, a key that only ingests.
    await t.get(`/v1/customers/a/subscriptions/${b.subscriptionId}/allowance-state`).expect(404);
    const other = await tenant(api, 'Other');
    await other.get(`/v1/customers/a/subscriptions/${a.subscriptionId}/allowance-state`).expect(404);
    await t.get(`/v1/customers/a/subscriptions/nope/allowance-state`).expect(404);
    await t.get(`/v1/customers/nobody/subscriptions/${a.subscriptionId}/allowance-state`).expect(404);
    await api.http.get(`/v1/customers/a/subscriptions/${a.subscriptionId}/allowance-state`).set(bearer(await t.key('ingest'))).expect(403);
    await t.get(`/v1/customers/a/subscriptions/${a.subscriptionId}/allowance-state?period=1999-01-01`).expect(422);
  });
  it('answers live for every aggregation, events after the rollup included, exactly what the recompute then stores', async () => {
    const t = await tenant(api);
    await t.meter({ key: 'n_count', event_name: 'm.count', aggregation: 'count' });
    await t.meter({ key: 'n_sum', event_name: 'm.sum', aggregation: 'sum', property: 'v' });
    await t.meter({ key: 'n_max', event_name: 'm.max', aggregation: 'max', property: 'v' });
    await t.meter({ key: 'n_unique', event_name: 'm.unique', aggregation: 'unique_count', property: 'u' });
    await t.meter({ key: 'n_latest', event_name: 'm.latest', aggregation: 'latest', property: 'v' });
    const priced = (key: string) => ({ product_key: key, allowance: '10', price: { model: 'per_unit', unit_amount: '0.5' } });
    await t.plan('all', ['n_count', 'n_sum', 'n_max', 'n_unique', 'n_latest'].map(priced));
    const { subscriptionId } = await t.subscribe('agg', 'all', { started_at: periodStart });
    const ev = (name: string, i: number, properties: Record<string, unknown>, id = uid()) => ({ event_id: id, customer_id: 'agg', event_name: name, timestamp: at(i), properties });
    await send(t, [
      ...many('agg', 'm.count', 7),
      ev('m.sum', 1, { v: 4 }), ev('m.sum', 2, { v: '2.5' }), ev('m.sum', 3, { v: -1 }),
      ev('m.max', 1, { v: 9 }), ev('m.max', 2, { v: '3' }),
      ev('m.unique', 1, { u: 'a' }), ev('m.unique', 2, { u: 1 }), ev('m.unique', 3, { u: '1' }),
      ev('m.latest', 5, { v: 6 }), ev('m.latest', 5, { v: 2 }, 'latest-a'),
    ]);
    await rollUp(api, t.orgId);
    const used = (body: { dimensions: { product_key: string; used: string }[] }) => Object.fromEntries(body.dimensions.map((d) => [d.product_key, d.used]));
    const first = await state(t, 'agg', subscriptionId);
    expect(first.source).toBe('rollups');
    expect(used(first)).toEqual({ n_count: '7', n_latest: '2', n_max: '9', n_sum: '6.5', n_unique: '2' });
    // The same question again: the same answer.
    expect(await state(t, 'agg', subscriptionId)).toEqual(first);

    // After the rollup: a larger max, a later latest (and a tie on its instant won by the greater
    // event id), a new and a repeated unique value, quantities a numeric meter does not cover.
    await send(t, [
      ...many('agg', 'm.count', 3),
      ev('m.sum', 4, { v: '1.25' }), ev('m.sum', 5, { v: 'x' }),
      ev('m.max', 3, { v: 12 }), ev('m.max', 4, { v: 1 }),
      ev('m.unique', 4, { u: 'a' }), ev('m.unique', 5, { u: 'b' }), ev('m.unique', 6, { u: null }),
      ev('m.latest', 5, { v: 8 }, 'latest-b'), ev('m.latest', 4, { v: 100 }),
    ]);
    const live = await state(t, 'agg', subscriptionId);
    expect(live.source).toBe('live');
    expect(used(live)).toEqual({ n_count: '10', n_latest: '8', n_max: '12', n_sum: '7.75', n_unique: '3' });
    // Exactly what the rollup SQL gives when run on its own, and what the recompute then stores.
    const computed = await api.app.get(RollupsService).compute(api.orm.em.fork() as EntityManager, subscriptionId, periodStart);
    expect(Object.fromEntries(computed.map((r) => [r.product_key, r.aggregate]))).toEqual(used(live));
    await rollUp(api, t.orgId);
    const rolled = await state(t, 'agg', subscriptionId);
    expect(rolled.source).toBe('rollups');
    const figures = ({ as_of: _a, source: _s, ...rest }: Record<string, unknown>) => rest;
    expect(figures(rolled)).toEqual(figures(live));
  });

  it('never answers from remembered terms after a change: a seat change moves the allowance at once', async () => {
    const t = await perSeatStorageTenant();
    const { subscriptionId } = await t.subscribe('seats', 'team', { seats: 10, started_at: periodStart });
    await send(t, [{ event_id: uid(), customer_id: 'seats', event_name: 'storage.used', timestamp: new Date(Date.now() - 1000).toISOString(), properties: { gb: '70' } }]);
    await rollUp(api, t.orgId);
    const before = await state(t, 'seats', subscriptionId, null);
    expect(dim(before, 'storage')).toMatchObject({ included: '50', used: '70' });
    await state(t, 'seats', subscriptionId, null);
    await t.post(`/v1/subscriptions/${subscriptionId}/seats`, { seats: 20, effective_at: new Date().toISOString() }).expect(201);
    const after = await state(t, 'seats', subscriptionId, null);
    expect(Number((dim(after, 'storage') as unknown as { included: string }).included)).toBeGreaterThan(50);
    const upcoming = (await t.get(`/v1/subscriptions/${subscriptionId}/upcoming-invoice`).expect(200)).body;
    expect(after.dimensions.map(({ product_name: _n, overage_mode: _o, ...d }: Record<string, unknown>) => d)).toEqual(upcoming.allowance);
  });
});
