import fc from 'fast-check';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { QueueEvents } from 'bullmq';
import { dec } from '@closebook/money';
import { COMPUTE_ROLLUPS_SQL, digestOf, eventDigest, pairKeys, RollupsService } from '@closebook/metering';
import { JobsService, loadConfig, redisConnection } from '@closebook/platform';
import { WorkerModule } from '../../apps/worker/src/worker.module';
import { startApi, type TestApi } from '../helpers/api';
import { DAY_MS, monthStart, rollUp, sql, tenant, uid, type Tenant } from './fixtures';

// ---------------------------------------------------------------------------------------------
// A brute-force twin of the rollup SQL, over the raw events, in TypeScript.

type Json = string | number | boolean | null;
interface RawEvent {
  event_id: string;
  event_name: string;
  timestamp: string;
  properties: Record<string, Json>;
}
interface Meter {
  key: string;
  event_name: string;
  aggregation: 'count' | 'sum' | 'max' | 'unique_count' | 'latest';
  property?: string;
  filter?: Record<string, string | number | boolean>;
  price_key_label?: string;
}

const METERS: Meter[] = [
  { key: 'calls', event_name: 'api.call', aggregation: 'count' },
  { key: 'gb', event_name: 'cdn.transfer', aggregation: 'sum', property: 'gb', filter: { region: 'eu' }, price_key_label: 'environment' },
  { key: 'peak', event_name: 'conn.sample', aggregation: 'max', property: 'open' },
  { key: 'mau', event_name: 'user.seen', aggregation: 'unique_count', property: 'user_id' },
  { key: 'storage', event_name: 'storage.gauge', aggregation: 'latest', property: 'gb', filter: { kind: 'disk', billable: true } },
];

/** What ->> prints for a JSON scalar (the test only generates values whose text both sides agree on). */
const text = (v: Json): string | null => (v === null ? null : typeof v === 'string' ? v : String(v));
const NON_NEG_DECIMAL = /^[0-9]+([.][0-9]+)?$/;
function quantity(v: Json | undefined): string | null {
  if (typeof v === 'number') return v >= 0 ? String(v) : null;
  if (typeof v === 'string' && NON_NEG_DECIMAL.test(v)) return v;
  return null;
}

interface Expected {
  product_key: string;
  price_key: string;
  count: number;
  aggregate: string;
  digest: string;
}

function bruteForce(events: RawEvent[], from: number, to: number): Map<string, Expected> {
  const seen = new Set<string>();
  const unique = events.filter((e) => (seen.has(e.event_id) ? false : (seen.add(e.event_id), true)));
  const inPeriod = unique.filter((e) => Date.parse(e.timestamp) >= from && Date.parse(e.timestamp) < to);
  const out = new Map<string, Expected>();
  for (const m of METERS) {
    const groups = new Map<string, RawEvent[]>();
    for (const e of inPeriod) {
      if (e.event_name !== m.event_name) continue;
      if (m.filter && !Object.entries(m.filter).every(([k, v]) => e.properties[k] === v)) continue;
      const v = m.property ? e.properties[m.property] : undefined;
      if (m.aggregation === 'unique_count' && (v === undefined || v === null)) continue;
      if (['sum', 'max', 'latest'].includes(m.aggregation) && quantity(v) === null) continue;
      const key = m.price_key_label ? text(e.properties[m.price_key_label] ?? null) ?? '' : '';
      groups.set(key, [...(groups.get(key) ?? []), e]);
    }
    if (!m.price_key_label && groups.size === 0) groups.set('', []);
    for (const [key, evs] of groups) {
      const qs = ['sum', 'max', 'latest'].includes(m.aggregation) ? evs.map((e) => dec(quantity(e.properties[m.property!])!)) : [];
      let aggregate = dec(0);
      if (m.aggregation === 'count') aggregate = dec(evs.length);
      if (m.aggregation === 'sum') aggregate = qs.reduce((a, b) => a.plus(b), dec(0));
      if (m.aggregation === 'max') aggregate = qs.reduce((a, b) => (b.gt(a) ? b : a), dec(0));
      if (m.aggregation === 'unique_count') aggregate = dec(new Set(evs.map((e) => text(e.properties[m.property!])!)).size);
      if (m.aggregation === 'latest' && evs.length) {
        const last = [...evs].sort((a, b) => Date.parse(b.timestamp) - Date.parse(a.timestamp) || (b.event_id < a.event_id ? -1 : b.event_id > a.event_id ? 1 : 0))[0];
        aggregate = dec(quantity(last.properties[m.property!])!);
      }
      out.set(`${m.key}|${key}`, { product_key: m.key, price_key: key, count: evs.length, aggregate: aggregate.toFixed(), digest: digestOf(evs.map((e) => e.event_id)) });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('rollups', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  const periodStart = monthStart(-1);
  const periodEnd = monthStart(0);

  async function catalog(): Promise<Tenant> {
    const t = await tenant(api, 'Rollups');
    for (const m of METERS) await t.meter(m);
    await t.plan('all', [
      { product_key: 'calls', allowance: '100', price: { model: 'per_unit', unit_amount: '0.01' } },
      {
        product_key: 'gb',
        keyed_prices: [
          { key: 'prod', price: { model: 'per_unit', unit_amount: '0.10' }, allowance: '10' },
          { key: 'preview', price: { model: 'per_unit', unit_amount: '0.02' } },
          { key: '*', price: { model: 'per_unit', unit_amount: '0.05' } },
        ],
      },
      { product_key: 'peak', allowance: '5', price: { model: 'per_unit', unit_amount: '1' } },
      { product_key: 'mau', allowance: '3', price: { model: 'per_unit', unit_amount: '2' } },
      { product_key: 'storage', allowance: '1', price: { model: 'per_unit', unit_amount: '0.5' } },
    ]);
    return t;
  }

  const stored = async (subscriptionId: string) =>
    sql<{ id: string; product_key: string; price_key: string; event_count: string; aggregate: string; digest: string; computed_at: Date }>(
      api,
      `select id, product_key, price_key, event_count::text as event_count, aggregate::text as aggregate, digest::text as digest, computed_at
       from usage_rollups where subscription_id = ? and period_start = ? order by product_key, price_key`,
      [subscriptionId, periodStart],
    );

  // Generators: values chosen so that both sides print them the same way (no 1e-7, no 1.50).
  const money = fc.oneof(
    fc.integer({ min: 0, max: 100_000 }).map((n) => String(n / 100)),
    fc.integer({ min: 0, max: 1_000 }).map((n) => n / 4),
    fc.constantFrom('abc', '-1', '1e3', '', '0.5', '12.125', '7'),
    fc.integer({ min: -50, max: -1 }),
    fc.constant(null),
  );
  const propsArb = fc.record(
    {
      gb: money,
      open: money,
      region: fc.constantFrom('eu', 'us', 'EU'),
      environment: fc.constantFrom<Json>('prod', 'preview', 'dev', null, 7),
      user_id: fc.constantFrom<Json>('u1', 'u2', 'u3', 4, 5, true, null),
      kind: fc.constantFrom('disk', 'ram'),
      billable: fc.constantFrom<Json>(true, false, 'true'),
    },
    { requiredKeys: [] },
  );
  const names = fc.constantFrom('api.call', 'cdn.transfer', 'conn.sample', 'user.seen', 'storage.gauge', 'other.event');
  // Mostly inside last month; some on the edges and in the neighbouring months.
  const span = periodEnd.getTime() - periodStart.getTime();
  const tsArb = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: span - 1 }).map((o) => periodStart.getTime() + o) },
    { weight: 1, arbitrary: fc.constantFrom(periodStart.getTime(), periodEnd.getTime() - 1, periodEnd.getTime(), periodStart.getTime() - 1) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 5 * DAY_MS }).map((o) => periodStart.getTime() - o) },
  );
  const eventsArb = fc
    .array(fc.record({ id: fc.integer({ min: 0, max: 80 }), event_name: names, ts: tsArb, properties: propsArb }), { maxLength: 60 })
    .map((xs) =>
      xs.map((x): RawEvent => ({ event_id: `ev-${x.id}`, event_name: x.event_name, timestamp: new Date(x.ts).toISOString(), properties: x.properties as Record<string, Json> })),
    );

  it('equals a brute-force computation over the raw events, for every aggregation, filter and price key, digest included', async () => {
    const t = await catalog();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(eventsArb, fc.integer({ min: 1, max: 3 }), async (generated, batches) => {
        const customer = `c-${n++}`;
        // Ids are unique per run (the organization is shared by the runs).
        const events = generated.map((e) => ({ ...e, event_id: `${customer}:${e.event_id}` }));
        const { subscriptionId } = await t.subscribe(customer, 'all', { started_at: periodStart });
        // Sent in several batches (duplicates across batches and within one), in any order.
        const size = Math.ceil(events.length / batches) || 1;
        for (let i = 0; i < events.length; i += size) {
          const res = await t.send(events.slice(i, i + size).map((e) => ({ ...e, customer_id: customer }))).expect(200);
          expect(res.body.rejected).toEqual([]);
        }
        await api.app.get(RollupsService).recompute(api.orm.em.fork() as EntityManager, subscriptionId, periodStart);
        const expected = bruteForce(events, periodStart.getTime(), periodEnd.getTime());
        const rows = await stored(subscriptionId);
        const actual = new Map(rows.map((r) => [`${r.product_key}|${r.price_key}`, r]));
        expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
        for (const [k, e] of expected) {
          const a = actual.get(k)!;
          expect({ k, count: Number(a.event_count), aggregate: dec(a.aggregate).toFixed(), digest: a.digest }).toEqual({
            k,
            count: e.count,
            aggregate: e.aggregate,
            digest: e.digest,
          });
        }
        // The read-only computation (reconciliation's) agrees with what was stored.
        const computed = await api.app.get(RollupsService).compute(api.orm.em.fork() as EntityManager, subscriptionId, periodStart);
        expect(computed.map((c) => [c.product_key, c.price_key, c.event_count, c.digest]).sort()).toEqual(
          rows.map((r) => [r.product_key, r.price_key, r.event_count, r.digest]).sort(),
        );
      }),
      { numRuns: 25 },
    );
  });

  it('the digest twin matches PostgreSQL for any id, non-ASCII included', async () => {
    const ids = ['a', 'évènement-1', '日本語', 'x'.repeat(200), '0', 'ev-1'];
    const [row] = await sql<{ d: string }>(
      api,
      `select coalesce(bit_xor(('x' || left(md5(event_id), 16))::bit(64)::bigint), 0)::text as d from (select jsonb_array_elements_text(?::jsonb) as event_id) x`,
      [JSON.stringify(ids)],
    );
    expect(row.d).toBe(digestOf(ids));
    expect(digestOf([...ids].reverse())).toBe(digestOf(ids));
    expect(digestOf([])).toBe('0');
  });

  it('stores each ingested event\'s digest term beside it, equal to the twin, and refuses a written one', async () => {
    const t = await catalog();
    await t.subscribe('acme', 'all', { started_at: periodStart });
    const ids = ['évènement-digest-1', '日本語-digest', `digest-${uid()}`];
    await t
      .send(ids.map((event_id, i) => ({ event_id, customer_id: 'acme', event_name: 'api.call', timestamp: new Date(periodStart.getTime() + 60_000 * (i + 1)).toISOString(), properties: {} })))
      .expect(200);
    const rows = await sql<{ event_id: string; d: string }>(api, `select event_id, event_digest::text as d from usage_events where event_id = any(?::text[])`, [`{${ids.map((i) => `"${i}"`).join(',')}}`]);
    expect(Object.fromEntries(rows.map((r) => [r.event_id, r.d]))).toEqual(Object.fromEntries(ids.map((i) => [i, eventDigest(i).toString()])));
    await expect(
      sql(api, `insert into usage_events (organization_id, event_id, customer_id, event_name, ts, properties, event_digest) select organization_id, 'forged', customer_id, event_name, ts, properties, 1 from usage_events where event_id = ?`, [ids[0]]),
    ).rejects.toThrow(/cannot insert a non-DEFAULT value into column "event_digest"/);
  });

  it('fetches each event of a period once per meter of its name (the read index leads with the event name)', async () => {
    const t = await catalog();
    const { subscriptionId } = await t.subscribe('acme', 'all', { started_at: periodStart });
    // Every event satisfies every meter's filter and value, so only the event name tells the meters apart.
    const properties = { gb: '1.5', open: 3, user_id: 'u-1', region: 'eu', environment: 'prod', kind: 'disk', billable: true };
    const names = [...new Set(METERS.map((m) => m.event_name))];
    const events = names.flatMap((event_name, n) =>
      Array.from({ length: 12 }, (_, i) => ({ event_id: uid(), customer_id: 'acme', event_name, timestamp: new Date(periodStart.getTime() + 60_000 * (n * 12 + i + 1)).toISOString(), properties })),
    );
    await t.send(events).expect(200);
    type PlanNode = { 'Relation Name'?: string; 'Actual Rows': number; 'Actual Loops': number; 'Rows Removed by Filter'?: number; Plans?: PlanNode[] };
    const plan = await (api.orm.em.fork() as EntityManager).transactional(async (tx) => {
      // A test partition is small enough to be read whole; a month-end's is not. What is checked is the index.
      await tx.execute('set local enable_seqscan = off');
      const [row] = await tx.execute<{ 'QUERY PLAN': { Plan: PlanNode }[] }[]>(`explain (analyze, format json) ${COMPUTE_ROLLUPS_SQL}`, pairKeys([{ subscription_id: subscriptionId, period_start: periodStart }]));
      return row['QUERY PLAN'][0].Plan;
    });
    const scans: PlanNode[] = [];
    const walk = (n: PlanNode) => {
      if (n['Relation Name']?.startsWith('usage_events')) scans.push(n);
      n.Plans?.forEach(walk);
    };
    walk(plan);
    expect(scans.length).toBeGreaterThan(0);
    // Rows read = kept + filtered out, per loop (EXPLAIN averages both over loops). On (customer_id, ts) each of
    // the five meters' loops read all 60 events and dropped the other names' 48: 300 rows for 60 events.
    const read = scans.reduce((n, s) => n + (s['Actual Rows'] + (s['Rows Removed by Filter'] ?? 0)) * s['Actual Loops'], 0);
    expect(read).toBe(events.length);
    const rollups = await api.app.get(RollupsService).compute(api.orm.em.fork() as EntityManager, subscriptionId, periodStart);
    expect(rollups.map((r) => [r.product_key, r.event_count]).sort()).toEqual(METERS.map((m) => [m.key, '12']).sort());
  });

  describe('the rollup job', () => {
    async function withEvents() {
      const t = await catalog();
      const { subscriptionId } = await t.subscribe('acme', 'all', { started_at: periodStart });
      const at = (i: number) => new Date(periodStart.getTime() + 60_000 * (i + 1)).toISOString();
      const events = Array.from({ length: 300 }, (_, i) => ({
        event_id: uid(),
        customer_id: 'acme',
        event_name: i % 2 ? 'api.call' : 'cdn.transfer',
        timestamp: at(i),
        properties: { gb: `${i % 7}.25`, region: 'eu', environment: i % 3 ? 'prod' : 'preview' },
      }));
      await t.send(events).expect(200);
      return { t, subscriptionId, events, at };
    }

    it('clears the dirty mark, and gives the same rollups when retried, duplicated or run concurrently', async () => {
      const { t, subscriptionId, events, at } = await withEvents();
      // The subscription's three periods were marked when it was created (hook) and last month's by ingest.
      // Other suites' workers sweep every organization of this shared database, so a pair may be done or held by
      // one of them: run until nothing is left rather than expecting this call to do all three.
      let first = await rollUp(api, t.orgId);
      expect(first.processed + first.busy).toBeLessThanOrEqual(3);
      for (let i = 0; i < 20 && (first.remaining || first.busy > 0); i++) {
        await new Promise((r) => setTimeout(r, 100));
        first = await rollUp(api, t.orgId);
      }
      expect(first).toMatchObject({ busy: 0, remaining: false });
      expect(await sql(api, 'select 1 from usage_rollup_dirty where subscription_id = ?', [subscriptionId])).toHaveLength(0);
      const once = await stored(subscriptionId);
      expect(once.find((r) => r.product_key === 'calls')!.event_count).toBe('150');

      // Retried (nothing dirty: a no-op) and forced again, twice at once: same rows, same ids.
      await rollUp(api, t.orgId);
      const svc = api.app.get(RollupsService);
      await Promise.all([svc.recompute(api.orm.em.fork() as EntityManager, subscriptionId, periodStart), svc.recompute(api.orm.em.fork() as EntityManager, subscriptionId, periodStart)]);
      const again = await stored(subscriptionId);
      const strip = (rows: typeof once) => rows.map(({ computed_at: _c, ...r }) => r);
      expect(strip(again)).toEqual(strip(once));

      // Duplicated events change nothing either; a new event does.
      await t.send(events.slice(0, 50)).expect(200);
      await t.send([{ event_id: uid(), customer_id: 'acme', event_name: 'api.call', timestamp: at(999), properties: {} }]).expect(200);
      await Promise.all([rollUp(api, t.orgId), rollUp(api, t.orgId), rollUp(api)]);
      const after = await stored(subscriptionId);
      expect(after.find((r) => r.product_key === 'calls')!.event_count).toBe('151');
      expect(after.map((r) => r.id)).toEqual(once.map((r) => r.id));
      expect(await sql(api, 'select 1 from usage_rollup_dirty where subscription_id = ?', [subscriptionId])).toHaveLength(0);
    });

    it('recomputes every period of a month for reconciliation, and compute() agrees with the stored rows', async () => {
      const { t, subscriptionId } = await withEvents();
      const svc = api.app.get(RollupsService);
      const em = api.orm.em.fork() as EntityManager;
      const month = periodStart.toISOString().slice(0, 7);
      const results = await svc.recomputeMonth(em, t.orgId, month);
      expect(results).toEqual([expect.objectContaining({ subscription_id: subscriptionId, found: true, status: 'done', cleared: true })]);
      const computed = await svc.compute(em, subscriptionId, periodStart);
      const saved = await svc.stored(em, subscriptionId, periodStart);
      expect(computed.map((r) => [r.product_key, r.price_key, r.event_count, r.aggregate, r.digest])).toEqual(
        saved.map((r) => [r.product_key, r.price_key, r.event_count, r.aggregate, r.digest]),
      );
      await expect(svc.recomputeMonth(em, t.orgId, '2026-13')).rejects.toThrow(/YYYY-MM/);
    });

    it('recomputes pairs a page per statement: a pair another transaction holds is skipped as busy and keeps its mark', async () => {
      const t = await catalog();
      const svc = api.app.get(RollupsService);
      const subs: string[] = [];
      for (let c = 0; c < 5; c++) {
        const customer = `page-${c}`;
        subs.push((await t.subscribe(customer, 'all', { started_at: periodStart })).subscriptionId);
        const events = Array.from({ length: 20 + c }, (_, i) => ({
          event_id: uid(),
          customer_id: customer,
          event_name: i % 2 ? 'api.call' : 'user.seen',
          timestamp: new Date(periodStart.getTime() + 60_000 * (i + 1)).toISOString(),
          properties: { user_id: `u${(i >> 1) % 4}` },
        }));
        await t.send(events).expect(200);
      }
      const held = subs[2];
      const lockKey = `usage_rollup:${held}:${periodStart.toISOString()}`;
      const isMarked = async (sub: string) => (await sql(api, 'select 1 from usage_rollup_dirty where subscription_id = ? and period_start = ?', [sub, periodStart])).length > 0;
      await (api.orm.em.fork() as EntityManager).transactional(async (tx) => {
        await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [lockKey]);
        // Another suite's worker may have rolled the pairs up since ingest marked them; marked again
        // now (from outside this transaction), the held pair can only be taken by the call below.
        await sql(
          api,
          `insert into usage_rollup_dirty (subscription_id, period_start, organization_id) values (?, ?, ?)
           on conflict (subscription_id, period_start) do update set version = nextval('usage_rollup_dirty_version_seq'), marked_at = now()`,
          [held, periodStart, t.orgId],
        );
        // Pages of two pairs, so the held pair shares a statement with a free one.
        const res = await svc.processDirty(api.orm.em.fork() as EntityManager, { organizationId: t.orgId, batch: 2, concurrency: 1 });
        expect(res.busy).toBeGreaterThanOrEqual(1);
        expect(await isMarked(held)).toBe(true);
      });
      for (const sub of subs.filter((s) => s !== held)) expect(await isMarked(sub)).toBe(false);
      await rollUp(api, t.orgId);
      expect(await isMarked(held)).toBe(false);
      const em = api.orm.em.fork() as EntityManager;
      for (const [i, sub] of subs.entries()) {
        const computed = await svc.compute(em, sub, periodStart);
        const saved = await svc.stored(em, sub, periodStart);
        expect(saved.map((r) => [r.product_key, r.price_key, r.event_count, r.aggregate, r.digest])).toEqual(
          computed.map((r) => [r.product_key, r.price_key, r.event_count, r.aggregate, r.digest]),
        );
        expect(saved.find((r) => r.product_key === 'calls')!.event_count).toBe(String(Math.floor((20 + i) / 2)));
        expect(saved.find((r) => r.product_key === 'mau')!.aggregate).toBe('4');
      }
    });

    it('keeps a mark made during a recompute (version check), so the next run includes its events', async () => {
      const { t, subscriptionId, at } = await withEvents();
      const mark = 'select version::text as version from usage_rollup_dirty where subscription_id = ? and period_start = ?';
      const [{ version }] = await sql<{ version: string }>(api, mark, [subscriptionId, periodStart]);
      // Simulate ingest re-marking the pair between the recompute's read and its clear: bump the version first.
      await t.send([{ event_id: uid(), customer_id: 'acme', event_name: 'api.call', timestamp: at(500), properties: {} }]).expect(200);
      const [{ version: bumped }] = await sql<{ version: string }>(api, mark, [subscriptionId, periodStart]);
      expect(BigInt(bumped)).toBeGreaterThan(BigInt(version));
      const deleted = await sql(api, 'delete from usage_rollup_dirty where subscription_id = ? and version = ? returning 1', [subscriptionId, version]);
      expect(deleted).toHaveLength(0);
      await rollUp(api, t.orgId);
      expect((await stored(subscriptionId)).find((r) => r.product_key === 'calls')!.event_count).toBe('151');
    });

    it('runs through BullMQ in the worker: the job enqueued by ingest, twice, has one effect', async () => {
      const worker: INestApplicationContext = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
      await worker.init();
      const config = loadConfig();
      const events = new QueueEvents('metering', { connection: redisConnection(config.redisUrl), prefix: config.queuePrefix });
      events.on('error', () => undefined); // closing races are not test failures
      try {
        await events.waitUntilReady();
        const { t, subscriptionId } = await withEvents();
        const jobs = worker.get(JobsService);
        const a = await jobs.enqueue('metering.rollup', { organization_id: t.orgId }, { jobId: `metering-rollup-test-${t.orgId}` });
        const b = await jobs.enqueue('metering.rollup', { organization_id: t.orgId }, { jobId: `metering-rollup-test-${t.orgId}` });
        expect(b.id).toBe(a.id);
        await a.waitUntilFinished(events, 20_000);
        const c = await jobs.enqueue('metering.rollup', { organization_id: t.orgId }, { jobId: `metering-rollup-test2-${t.orgId}` });
        await c.waitUntilFinished(events, 20_000);
        // A pair the worker's sweep holds (a page of every organization's pairs) is skipped as busy by
        // the organization's job; the sweep clears it. Wait for the mark, not for one particular job.
        for (let i = 0; i < 200 && (await sql(api, 'select 1 from usage_rollup_dirty where subscription_id = ?', [subscriptionId])).length; i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        const rows = await stored(subscriptionId);
        expect(rows.find((r) => r.product_key === 'calls')!.event_count).toBe('150');
        expect(await sql(api, 'select 1 from usage_rollup_dirty where subscription_id = ?', [subscriptionId])).toHaveLength(0);
        const schedulers = await jobs.queue('metering').getJobSchedulers();
        expect(schedulers.map((s) => s.key)).toEqual(expect.arrayContaining(['metering-sweep', 'metering-attribution-sweep']));
      } finally {
        await events.close();
        await worker.close();
      }
    });

    it('rolls up a subscription created after its events (hook), and the sweep marks current periods never rolled up', async () => {
      const t = await catalog();
      const svc = api.app.get(RollupsService);
      const now = Date.now();
      const callsOf = async (sub: string) =>
        sql<{ event_count: string }>(api, `select event_count::text as event_count from usage_rollups where subscription_id = ? and period_start = ? and product_key = 'calls'`, [sub, monthStart(0)]);
      for (const c of ['late-a', 'late-b']) {
        await t.post('/v1/customers', { external_id: c, name: c, currency: 'USD' }).expect(201);
        await t.send([{ event_id: uid(), customer_id: c, event_name: 'api.call', timestamp: new Date(now - 1000).toISOString() }]).expect(200);
      }
      // The subscription lifecycle hook marks the new subscription's periods in its transaction.
      const a = await t.post('/v1/customers/late-a/subscriptions', { plan_key: 'all', started_at: monthStart(0).toISOString() }).expect(201);
      expect((await sql(api, 'select 1 from usage_rollup_dirty where subscription_id = ?', [a.body.id])).length).toBeGreaterThan(0);
      await rollUp(api, t.orgId);
      expect(await callsOf(a.body.id)).toEqual([{ event_count: '1' }]);
      // Without the mark (lost, or a period row written later), the attribution sweep finds the current period.
      const b = await t.post('/v1/customers/late-b/subscriptions', { plan_key: 'all', started_at: monthStart(0).toISOString() }).expect(201);
      await sql(api, 'delete from usage_rollup_dirty where subscription_id = ?', [b.body.id]);
      await rollUp(api, t.orgId);
      expect(await callsOf(b.body.id)).toEqual([]);
      expect(await svc.markUnrolledCurrentPeriods(api.orm.em.fork() as EntityManager)).toBeGreaterThanOrEqual(1);
      await rollUp(api, t.orgId);
      expect(await callsOf(b.body.id)).toEqual([{ event_count: '1' }]);
    });
  });

  it('lists a period\'s rollups over HTTP with count, aggregate, digest and computed_at', async () => {
    const t = await catalog();
    const { subscriptionId } = await t.subscribe('acme', 'all', { started_at: periodStart });
    const ids = ['u-1', 'u-2', 'u-3'];
    await t
      .send(ids.map((id, i) => ({ event_id: id, customer_id: 'acme', event_name: 'cdn.transfer', timestamp: new Date(periodStart.getTime() + i * 1000).toISOString(), properties: { gb: '1.5', region: 'eu', environment: 'prod' } })))
      .expect(200);
    const pending = await t.get(`/v1/subscriptions/${subscriptionId}/usage?period=${periodStart.toISOString().slice(0, 10)}`).expect(200);
    expect(pending.body).toMatchObject({ pending: true, computed_at: null, data: [] });
    await rollUp(api, t.orgId);
    const res = await t.get(`/v1/subscriptions/${subscriptionId}/usage?period=${periodStart.toISOString().slice(0, 10)}`).expect(200);
    expect(res.body.period).toEqual({ start: periodStart.toISOString(), end: periodEnd.toISOString() });
    expect(res.body.pending).toBe(false);
    const gb = res.body.data.find((r: { product_key: string }) => r.product_key === 'gb');
    expect(gb).toEqual({
      id: expect.any(String),
      product_id: expect.any(String),
      product_key: 'gb',
      price_key: 'prod',
      aggregation: 'sum',
      count: '3',
      aggregate: '4.5',
      digest: digestOf(ids),
      computed_at: expect.any(String),
    });
    expect(res.body.data.find((r: { product_key: string }) => r.product_key === 'calls')).toMatchObject({ price_key: null, count: '0', aggregate: '0', digest: '0' });
    // The current period by default; an unknown period is a 422; another tenant's subscription a 404.
    const current = await t.get(`/v1/subscriptions/${subscriptionId}/usage`).expect(200);
    expect(current.body.period.start).toBe(periodEnd.toISOString());
    await t.get(`/v1/subscriptions/${subscriptionId}/usage?period=2001-01-01`).expect(422);
    await t.get(`/v1/subscriptions/${subscriptionId}/usage?period=2001-13-01`).expect(400);
    const other = await tenant(api, 'Other');
    await other.get(`/v1/subscriptions/${subscriptionId}/usage`).expect(404);
    await t.get('/v1/subscriptions/not-a-uuid/usage').expect(404);
  });
});
