// The rollup page rates the allowance of all its pairs from one load of their inputs. These tests pin
// that the page emits exactly what each pair gives on its own (and what the allowance read says), and
// that the statements a page sends do not grow with its pairs.
import type { EntityManager } from '@mikro-orm/postgresql';
import { AllowanceEngine, RollupsService, thresholdsReached } from '@closebook/metering';
import { OutboxService, type OutboxEvent } from '@closebook/platform';
import { toSubscriptionRow } from '../../libs/billing/metering/src/catalog/billing-sources';
import { startApi, type TestApi } from '../helpers/api';
import { monthStart, sql, tenant, uid, type Tenant } from './fixtures';

interface Statement {
  sql: string;
  ctx: unknown;
}

describe('allowance thresholds, a page at a time', () => {
  let api: TestApi;
  let t: Tenant;
  const subs: Record<'basic' | 'seats' | 'rollover' | 'refused' | 'full' | 'moved' | 'quiet', string> = {} as never;
  const periodStart = monthStart(0);
  const pairOf = (sub: string) => ({ subscription_id: sub, period_start: periodStart });
  const em = () => api.orm.em.fork() as EntityManager;

  /** Every statement sent through the ORM's connection while `fn` runs, with the transaction it ran in. */
  async function statements<T>(fn: () => Promise<T>): Promise<{ result: T; sent: Statement[] }> {
    const conn = api.orm.em.getConnection();
    const sent: Statement[] = [];
    const original = conn.execute.bind(conn);
    const spy = jest.spyOn(conn, 'execute').mockImplementation(((q: unknown, params?: unknown, method?: unknown, ctx?: unknown, lc?: unknown) => {
      sent.push({ sql: typeof q === 'string' ? q : String(q), ctx });
      return (original as (...a: unknown[]) => unknown)(q, params, method, ctx, lc);
    }) as never);
    try {
      return { result: await fn(), sent };
    } finally {
      spy.mockRestore();
    }
  }

  /** The statements of the transaction that recomputed the rollups. */
  const pageStatements = (sent: Statement[]) => {
    const page = sent.find((s) => s.sql.includes('insert into usage_rollups'));
    expect(page).toBeDefined();
    // A list of n values is n placeholders in the ORM's text: one statement whatever n.
    return sent.filter((s) => s.ctx === page!.ctx).map((s) => s.sql.replace(/ in \((\?, )*\?\)/g, ' in (…)'));
  };

  /** What the rollup service hands the outbox, call by call. */
  async function emitted<T>(fn: () => Promise<T>): Promise<{ result: T; calls: OutboxEvent[][] }> {
    const outbox = api.app.get(OutboxService);
    const calls: OutboxEvent[][] = [];
    const original = outbox.emitMany.bind(outbox);
    const spy = jest.spyOn(outbox, 'emitMany').mockImplementation(async (tx, events) => {
      calls.push(events.filter((e) => e.type === 'allowance.threshold_reached').map((e) => structuredClone(e)));
      return original(tx, events);
    });
    try {
      return { result: await fn(), calls };
    } finally {
      spy.mockRestore();
    }
  }

  const calls = (customer: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      event_id: uid(),
      customer_id: customer,
      event_name: 'api.call',
      timestamp: new Date(Math.max(periodStart.getTime() + i, Date.now() - 60_000 + i)).toISOString(),
    }));

  beforeAll(async () => {
    api = await startApi();
    t = await tenant(api, 'Allowance pages');
    await t.meter({ key: 'calls', event_name: 'api.call', aggregation: 'count', unit: 'calls' });
    await t.product({ key: 'users', name: 'Users', kind: 'seat', unit: 'user' });
    await t.meter({ key: 'storage', event_name: 'storage.used', aggregation: 'sum', property: 'gb', unit: 'GB' });
    await t.plan('basic', [{ product_key: 'calls', allowance: '100', price: { model: 'per_unit', unit_amount: '0.01' } }]);
    await t.plan('bigger', [{ product_key: 'calls', allowance: '200', price: { model: 'per_unit', unit_amount: '0.02' } }]);
    await t.plan('team', [
      { product_key: 'users', included_seats: 0, price: { model: 'per_unit', unit_amount: '20' } },
      { product_key: 'storage', allowance: '5', allowance_basis: 'per_seat', price: { model: 'per_unit', unit_amount: '2' } },
    ]);
    const started_at = monthStart(-1);
    subs.basic = (await t.subscribe('basic', 'basic', { started_at })).subscriptionId;
    subs.seats = (await t.subscribe('seats', 'team', { seats: 10, started_at })).subscriptionId;
    subs.rollover = (await t.subscribe('rollover', 'basic', { started_at })).subscriptionId;
    subs.refused = (await t.subscribe('refused', 'basic', { started_at })).subscriptionId;
    subs.full = (await t.subscribe('full', 'basic', { started_at })).subscriptionId;
    subs.moved = (await t.subscribe('moved', 'basic', { started_at })).subscriptionId;
    subs.quiet = (await t.subscribe('quiet', 'basic', { started_at })).subscriptionId;

    // A seat change and a plan change inside the current period.
    await t.post(`/v1/subscriptions/${subs.seats}/seats`, { seats: 20, effective_at: new Date().toISOString() }).expect(201);
    await t.post(`/v1/subscriptions/${subs.moved}/transition-plan`, { plan_key: 'bigger', timing: 'immediate' }).expect(201);

    // 50 units carried into this period, 10 of them drawn before: 100 + 40 available.
    const [{ id: invoiceId }] = await sql<{ id: string }>(
      api,
      `insert into invoices (id, organization_id, customer_id, subscription_id, kind, source_key, period_start, period_end, issue_date, status, currency,
                             subtotal, tax_amount, total, finalize_after, content_hash, rated_at)
       select gen_random_uuid(), s.organization_id, s.customer_id, s.id, 'transition', ?, ?::timestamptz, ?::timestamptz, current_date, 'draft', 'USD',
              0, 0, 0, 'infinity', 'test', now()
       from subscriptions s where s.id = ? returning id`,
      [`test:${uid()}`, monthStart(-1).toISOString(), periodStart.toISOString(), subs.rollover],
    );
    const grant = { grant_id: 'carried-1', kind: 'rollover', quantity: '50', granted_in_period: periodStart.toISOString(), expires_after_period: periodStart.toISOString(), product_key: 'calls', price_key: null, carried_from_period: monthStart(-1).toISOString() };
    await sql(
      api,
      `insert into allowance_grants (id, organization_id, subscription_id, invoice_id, grant_id, kind, product_key, price_key, quantity, granted_in_period, expires_after_period, carried_from_period, "grant")
       values (gen_random_uuid(), ?, ?, ?, 'carried-1', 'rollover', 'calls', null, 50, ?, ?, ?, ?::jsonb)`,
      [t.orgId, subs.rollover, invoiceId, periodStart.toISOString(), periodStart.toISOString(), monthStart(-1).toISOString(), JSON.stringify(grant)],
    );
    await sql(
      api,
      `insert into allowance_drawdowns (id, organization_id, subscription_id, invoice_id, grant_id, period_start, product_key, price_key, drawn)
       values (gen_random_uuid(), ?, ?, ?, 'carried-1', ?, 'calls', null, 10)`,
      [t.orgId, subs.rollover, invoiceId, monthStart(-1).toISOString()],
    );

    // A published version the rating core refuses (a currency it does not know), pinned under one subscription.
    const [broken] = await sql<{ id: string }>(
      api,
      `insert into plan_versions (id, created_at, organization_id, plan_id, version, status, published_at, allowance_multiplier, document)
       select gen_random_uuid(), now(), pv.organization_id, pv.plan_id, pv.version + 1, 'published', now(), pv.allowance_multiplier,
              jsonb_set(pv.document, '{currency}', '"ZZZ"')
       from plan_versions pv join subscriptions s on s.plan_version_id = pv.id where s.id = ? returning id`,
      [subs.refused],
    );
    await sql(api, 'update subscriptions set plan_version_id = ? where id = ?', [broken.id, subs.refused]);

    const send = async (events: unknown[]) => expect((await t.send(events).expect(200)).body.rejected).toEqual([]);
    await send(calls('basic', 85));
    await send(calls('rollover', 130));
    await send(calls('refused', 150));
    await send(calls('full', 100));
    await send(calls('moved', 170));
    await send([{ event_id: uid(), customer_id: 'seats', event_name: 'storage.used', timestamp: new Date(Date.now() - 1000).toISOString(), properties: { gb: '95' } }]);
  });
  afterAll(() => api.close());

  const all = () => Object.values(subs).map(pairOf);

  it('emits, in one outbox write per page, exactly the thresholds each pair gives on its own and the allowance read reports', async () => {
    const svc = api.app.get(RollupsService);
    const page = await emitted(() => svc.recomputeMany(em(), all()));
    expect(page.calls).toHaveLength(1);
    expect(page.result.every((r) => r.status === 'done' && r.found)).toBe(true);

    // The same pairs, one page each, in key order: the same messages, byte for byte.
    const sorted = [...page.result].map((r) => r.subscription_id);
    const single = await emitted(async () => {
      for (const sub of sorted) await svc.recompute(em(), sub, periodStart);
    });
    expect(single.calls).toHaveLength(sorted.length);
    expect(JSON.stringify(page.calls[0])).toBe(JSON.stringify(single.calls.flat()));

    // And what the allowance read of each pair says (its own load path), threshold by threshold.
    const bySub = (sub: string) => page.calls[0].filter((e) => (e.payload as { subscription_id: string }).subscription_id === sub);
    const keys = (events: OutboxEvent[]) => events.map((e) => e.dedupeKey);
    for (const [name, sub] of Object.entries(subs)) {
      const res = await t.get(`/v1/customers/${name}/subscriptions/${sub}/allowance-state?period=${periodStart.toISOString().slice(0, 10)}`);
      if (name === 'refused') {
        expect(res.status).toBe(422);
        expect(res.body.error.code).toBe('allowance_state_unavailable');
        expect(bySub(sub)).toEqual([]);
        continue;
      }
      expect(res.status).toBe(200);
      const expected = (res.body.dimensions as { product_key: string; price_key: string | null; included: string; rolled_over: string; used: string }[]).flatMap((d) =>
        thresholdsReached(d).map((th) => `allowance.threshold_reached:${sub}:${periodStart.toISOString()}:${d.product_key}:${d.price_key ?? '-'}:${th}`),
      );
      expect(keys(bySub(sub))).toEqual(expected);
      for (const e of bySub(sub)) {
        const d = (res.body.dimensions as Record<string, unknown>[]).find((x) => x.product_key === (e.payload as { product_key: string }).product_key)!;
        expect(e.payload).toMatchObject({ included: d.included, rolled_over: d.rolled_over, used: d.used, percent_used: d.percent_used, capped: d.capped });
      }
    }

    // The figures that show each input was read: the carried grant (without it 130 of 100 would be 100% too),
    // the plan in force at the end of the period, the seat change, the refused plan skipped without stopping the page.
    expect(bySub(subs.basic).map((e) => e.payload.threshold)).toEqual([80]);
    expect(bySub(subs.full).map((e) => e.payload.threshold)).toEqual([80, 100]);
    expect(bySub(subs.rollover).map((e) => [e.payload.threshold, e.payload.rolled_over])).toEqual([[80, '40']]);
    expect(bySub(subs.quiet)).toEqual([]);
    expect(bySub(subs.moved).length).toBeGreaterThan(0);
    expect(Number(bySub(subs.moved)[0].payload.included)).toBeGreaterThan(100);
    const seats = bySub(subs.seats);
    expect(seats.length).toBeGreaterThan(0);
    expect(Number(seats[0].payload.included)).toBeGreaterThan(50);
  });

  it('sends the same statements for a page of one pair and a page of seven: nothing per pair', async () => {
    const svc = api.app.get(RollupsService);
    await svc.recomputeMany(em(), all()); // plan documents and the ledger tables seen once per process
    const many = pageStatements((await statements(() => svc.recomputeMany(em(), all()))).sent);
    const one = pageStatements((await statements(() => svc.recomputeMany(em(), [pairOf(subs.basic)]))).sent);
    expect(many).toEqual(one);
    // No statement text twice in a page: a read per pair would repeat one.
    expect(new Set(many).size).toBe(many.length);
    // lock, marks, recompute, subscriptions, add-ons, changes, grants, outbox (+ clearing marks when there are some).
    expect(many.length).toBeLessThanOrEqual(9);
  });

  it('gives the engine\'s single-pair answer and its page answer from the same computation', async () => {
    const engine = api.app.get(AllowanceEngine);
    const usage = [{ product_key: 'calls', price_key: '', quantity: '120' }];
    const period = { start: periodStart, end: monthStart(1), seq: null };
    const rows = await sql<Record<string, unknown>>(api, 'select * from subscriptions where id = any(?::uuid[]) order by id', [`{${[subs.rollover, subs.basic, subs.moved].join(',')}}`]);
    const questions = rows.map((r) => ({ sub: toSubscriptionRow(r), period, usage }));
    const page = await engine.statesMany(em(), questions);
    for (const [i, q] of questions.entries()) expect(page[i]).toEqual({ states: await engine.states(em(), q.sub, period, usage) });
    const rollover = questions.findIndex((q) => q.sub.id === subs.rollover);
    expect((page[rollover] as { states: { dimensions: { rolled_over: string }[] } }).states.dimensions[0].rolled_over).toBe('40');
  });
});
