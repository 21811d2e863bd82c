/**
 * Shared set-up of the close-scale benchmarks (close, allowance, scale-out): a database of the
 * benchmark's own (`closebook_bench_<name>`, dropped and recreated, migrated with the project's
 * migrator), the demo's catalog, customers and subscriptions created through the real HTTP API,
 * and usage events generated set-based (`INSERT … SELECT … generate_series`) straight into
 * `usage_events` — the ingest path has its own benchmark.
 */
import { randomBytes } from 'node:crypto';
import { Session } from 'node:inspector';
import os from 'node:os';
import { Client } from 'pg';
import Redis from 'ioredis';
import { dropDatabase, ensureDatabase, runMigrations } from '@closebook/platform';
import { DEMO_CURRENCY, PLANS, PLAN_MIX, PRODUCTS } from '../../apps/cli/src/demo/demo-catalog';
import { makeCustomers } from '../../apps/cli/src/demo/demo-traffic';

export const ROOT_URL = process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/closebook';
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

export function benchUrl(name: string): string {
  const u = new URL(ROOT_URL);
  u.pathname = `/closebook_bench_${name.replace(/[^a-z0-9_]/gi, '_')}`;
  return u.toString();
}

/**
 * A database and a queue prefix of this run's own (`closebook_bench_<run id>`, `cbbench_<run id>`),
 * for benchmarks that drop them at the end and may run beside another run of themselves.
 */
export function runScope(): { url: string; database: string; prefix: string } {
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const url = benchUrl(runId);
  return { url, database: new URL(url).pathname.slice(1), prefix: `cbbench_${runId}` };
}

/** The server's maintenance database (`postgres`), for CREATE/DROP DATABASE: the project's own may not exist yet. */
export function maintenanceUrl(): string {
  const u = new URL(ROOT_URL);
  u.pathname = '/postgres';
  return u.toString();
}

/** Drops and recreates the benchmark's database and applies every migration. */
export async function freshDatabase(url: string): Promise<void> {
  await dropDatabase(url).catch(() => undefined);
  await ensureDatabase(url);
  await runMigrations(url);
}

export async function clearRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export function numberFlags<T extends Record<string, number>>(argv: string[], defaults: T): T {
  const o: Record<string, number> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)$/.exec(argv[i]);
    if (!m) continue;
    const key = m[1].replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!(key in o)) throw new Error(`unknown option ${argv[i]} (known: ${Object.keys(o).map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')})`);
    const n = Number(argv[i + 1]);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${argv[i]} needs a positive number`);
    o[key] = n;
    i++;
  }
  return o as T;
}

export const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** A JSON client over the real HTTP API (keep-alive through Node's fetch). */
export class Api {
  constructor(readonly base: string, readonly key: string) {}
  with(key: string) {
    return new Api(this.base, key);
  }
  async req<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text.slice(0, 500)}`);
    return (text ? JSON.parse(text) : null) as T;
  }
  get<T = any>(path: string) {
    return this.req<T>('GET', path);
  }
  post<T = any>(path: string, body: unknown = {}) {
    return this.req<T>('POST', path, body);
  }
}

export async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export const utcMonth = (y: number, m: number) => new Date(Date.UTC(y, m, 1));
export const ym = (d: Date) => d.toISOString().slice(0, 7);

/** The demo's eleven products and four plans, through the API. */
export async function seedCatalog(finance: Api): Promise<void> {
  for (const p of PRODUCTS) await finance.post('/products', p);
  for (const { plan, version } of PLANS) {
    await finance.post('/plans', plan);
    await finance.post(`/plans/${plan.key}/versions`, version);
  }
}

export interface Seeded {
  subscriptions: { id: string; customer: string; plan: string }[];
}

/**
 * `count` customers with the demo's plan mix, each subscribed from `start` (a backdated start, as
 * the demo does), through the API. One in five Pro subscriptions takes the SSO add-on.
 */
export async function seedSubscriptions(finance: Api, count: number, start: Date, log: (s: string) => void, concurrency = 8): Promise<Seeded> {
  const customers = makeCustomers(count, PLAN_MIX);
  const subscriptions: Seeded['subscriptions'] = new Array(customers.length);
  const t0 = process.hrtime.bigint();
  let done = 0;
  await pool(customers, concurrency, async (c, i) => {
    await finance.post('/customers', { external_id: c.externalId, name: `Customer ${c.index}`, currency: DEMO_CURRENCY, tax_rate: c.index % 4 === 0 ? '0.2' : '0' });
    const body: Record<string, unknown> = { plan_key: c.plan, seats: c.seats, started_at: start.toISOString() };
    if (c.plan === 'pro' && c.index % 5 === 0) body.addons = [{ product_key: 'sso' }];
    const sub = await finance.post(`/customers/${c.externalId}/subscriptions`, body);
    subscriptions[i] = { id: sub.id, customer: c.externalId, plan: c.plan };
    if (++done % 1000 === 0) log(`  ${fmt(done)} subscriptions (${(done / seconds(t0)).toFixed(0)}/s)`);
  });
  return { subscriptions };
}

/**
 * Six metered dimensions of the demo catalog, in these shares of the events (per 20):
 * 10 api.requests (environment production 2/3, preview 1/3; count 1–50), 3 cdn.transfer (gb),
 * 2 build.finished (minutes), 1 storage.snapshot (gb, a max meter), 3 auth.login (user_id, a
 * unique_count meter over ≤ 800 users), 1 deploy.created (target production 3/4, staging 1/4:
 * the filtered count meter). Customers are taken round-robin, timestamps spread over [from, to).
 */
const EVENT_SELECT = `
with cs as (select array_agg(id order by external_id) as ids, count(*)::bigint as cnt from customers where organization_id = $1::uuid)
insert into usage_events (organization_id, event_id, customer_id, event_name, ts, properties)
select $1::uuid, $5 || g::text, cs.ids[1 + ((g / 20) % cs.cnt)::int],
       case when k < 10 then 'api.requests' when k < 13 then 'cdn.transfer' when k < 15 then 'build.finished'
            when k = 15 then 'storage.snapshot' when k < 19 then 'auth.login' else 'deploy.created' end,
       $2::timestamptz + ((g * 2654435761) % $3::bigint) * interval '1 millisecond',
       case when k < 10 then jsonb_build_object('environment', case when g % 3 = 0 then 'preview' else 'production' end, 'count', 1 + g % 50)
            when k < 13 then jsonb_build_object('gb', (g % 1000) / 100.0)
            when k < 15 then jsonb_build_object('minutes', 1 + g % 30)
            when k = 15 then jsonb_build_object('gb', g % 200)
            when k < 19 then jsonb_build_object('user_id', 'u' || ((g * 31) % 800))
            else jsonb_build_object('target', case when g % 4 = 0 then 'staging' else 'production' end) end
from cs, generate_series($4::bigint, $6::bigint - 1) g, lateral (select (g % 20)::int as k) kk`;

/**
 * Inserts `events` events of the organization in [from, to) in chunks over two connections, then
 * marks every (subscription, period) overlapping the span dirty as ingest would, and analyzes the
 * database.
 */
export async function generateEvents(url: string, orgId: string, from: Date, to: Date, events: number, log: (s: string) => void, idPrefix = 'bev_'): Promise<{ seconds: number }> {
  const setup = new Client({ connectionString: url });
  await setup.connect();
  const t0 = process.hrtime.bigint();
  try {
    for (let m = new Date(from); m < to; m = utcMonth(m.getUTCFullYear(), m.getUTCMonth() + 1)) {
      await setup.query('select closebook_ensure_usage_partition($1::date)', [m.toISOString()]);
    }
    const chunk = 500_000;
    const starts: number[] = [];
    for (let lo = 0; lo < events; lo += chunk) starts.push(lo);
    const conns = await Promise.all([0, 1].map(async () => {
      const c = new Client({ connectionString: url });
      await c.connect();
      await c.query(`set synchronous_commit = off`);
      return c;
    }));
    let next = 0;
    let done = 0;
    const span = to.getTime() - from.getTime();
    await Promise.all(
      conns.map(async (c) => {
        for (;;) {
          const i = next++;
          if (i >= starts.length) return;
          const lo = starts[i];
          const hi = Math.min(events, lo + chunk);
          await c.query(EVENT_SELECT, [orgId, from.toISOString(), span, lo, idPrefix, hi]);
          done += hi - lo;
          if (done % 2_000_000 < chunk) log(`  ${fmt(done)} events generated (${fmt(done / seconds(t0))}/s)`);
        }
      }),
    );
    await Promise.all(conns.map((c) => c.end()));
    await setup.query(
      `insert into usage_rollup_dirty (subscription_id, period_start, organization_id)
       select bp.subscription_id, bp.period_start, bp.organization_id from billing_periods bp
       where bp.organization_id = $1::uuid and bp.period_start < $3::timestamptz and bp.period_end > $2::timestamptz
       order by 1, 2
       on conflict (subscription_id, period_start) do update set version = nextval('usage_rollup_dirty_version_seq'), marked_at = now()`,
      [orgId, from.toISOString(), to.toISOString()],
    );
    const generated = seconds(t0);
    // Vacuumed and analyzed, as autovacuum keeps a database that grew to this size over weeks (an
    // insert-only table is vacuumed after its inserts since PostgreSQL 13). This box runs with
    // autovacuum off (conf.d/90-ci.conf). Without statistics the planner sees the 10,000
    // subscriptions and their periods as never analyzed, and the stages' first statements (the
    // rollups) plan per-pair lookups by organization instead of by key; without the vacuum the first
    // stage to read the month's events sets their rows' hint bits, dirtying the whole table while it
    // is timed.
    await setup.query('vacuum analyze');
    return { seconds: generated };
  } finally {
    await setup.end();
  }
}

/**
 * The physical limit of a month's rollups: one plain `INSERT INTO bench_rollups SELECT … GROUP BY`
 * over the same events with the same per-event work (meter selection incl. the deploys filter,
 * numeric quantity, the digest from the events' stored digest term as the rollups read it; distinct
 * users only over the unique-count meter's events).
 */
export async function plainGroupBy(url: string, orgId: string, from: Date, to: Date): Promise<{ seconds: number; rows: number; events: number }> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('drop table if exists bench_rollups');
    await c.query(`create table bench_rollups (customer_id uuid, event_name text, price_key text, event_count bigint, sum_qty numeric, max_qty numeric, uniques bigint, digest bigint)`);
    await c.query(`set work_mem = '64MB'`);
    const t0 = process.hrtime.bigint();
    const res = await c.query(
      `insert into bench_rollups
       with e as (
         select customer_id, event_name, coalesce(properties->>'environment', '') as price_key, event_digest,
                case event_name when 'api.requests' then (properties->>'count')::numeric when 'cdn.transfer' then (properties->>'gb')::numeric
                                when 'build.finished' then (properties->>'minutes')::numeric when 'storage.snapshot' then (properties->>'gb')::numeric end as qty,
                properties->>'user_id' as uniq
         from usage_events
         where organization_id = $1::uuid and ts >= $2::timestamptz and ts < $3::timestamptz
           and (event_name <> 'deploy.created' or properties @> '{"target": "production"}'))
       select g.customer_id, g.event_name, g.price_key, g.n, g.s, g.m, u.n, g.d
       from (select customer_id, event_name, price_key, count(*) as n, sum(qty) as s, max(qty) as m,
                    bit_xor(event_digest) as d
             from e group by 1, 2, 3) g
       left join (select customer_id, count(distinct uniq) as n from e where event_name = 'auth.login' group by 1) u
         on u.customer_id = g.customer_id and g.event_name = 'auth.login'`,
      [orgId, from.toISOString(), to.toISOString()],
    );
    const secs = seconds(t0);
    const [{ events }] = (await c.query('select coalesce(sum(event_count), 0)::bigint as events from bench_rollups')).rows;
    return { seconds: secs, rows: res.rowCount ?? 0, events: Number(events) };
  } finally {
    await c.end();
  }
}

/** A CPU profile of this process around `fn`: the functions with the most self time. */
export async function profiled<T>(enabled: boolean, fn: () => Promise<T>): Promise<{ value: T; profile: ProfileSummary | null }> {
  if (!enabled) return { value: await fn(), profile: null };
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) => new Promise<any>((resolve, reject) => session.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 1000 });
  await post('Profiler.start');
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const wall = seconds(t0);
  const cpu = process.cpuUsage(cpu0);
  const { profile } = await post('Profiler.stop');
  session.disconnect();
  return { value, profile: summarize(profile, wall, (cpu.user + cpu.system) / 1e6) };
}

export interface ProfileSummary {
  wall_s: number;
  node_cpu_s: number;
  /** Share of the wall time this Node process was on a CPU; the rest is waiting (PostgreSQL, Redis, I/O). */
  node_cpu_share: number;
  top_self: { fn: string; self_ms: number; pct_of_samples: number }[];
}

function summarize(profile: { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]; samples: number[]; timeDeltas: number[] }, wall: number, cpu: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const n = byId.get(id);
    if (!n) return;
    const dt = profile.timeDeltas[i] ?? 0;
    const url = n.callFrame.url.replace(/^.*\/(node_modules|dist)\//, '$1/');
    const key = `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  const top = [...self.entries()]
    .filter(([k]) => !k.startsWith('(idle)') && !k.startsWith('(program)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([fn, us]) => ({ fn, self_ms: Math.round(us / 1000), pct_of_samples: +((100 * us) / Math.max(1, total)).toFixed(1) }));
  return { wall_s: +wall.toFixed(2), node_cpu_s: +cpu.toFixed(2), node_cpu_share: +(cpu / wall).toFixed(2), top_self: top };
}

export function hostInfo() {
  return { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version, load_avg_1m: +os.loadavg()[0].toFixed(2) };
}
