/**
 * Ingest benchmark: `npm run bench -- ingest [--events N] [--batch N] [--clients N] [--customers N]`.
 *
 * On a database of its own (created, migrated, dropped at the end) it starts the compiled API as a
 * child process, creates a catalog, customers and subscriptions through the API, then sends N
 * events (default 1,000,000; 1% of them duplicates of events sent earlier) through POST /v1/events
 * in batches from several concurrent clients. It then COPYs the same distinct rows into a bare
 * table with the same unique index, the floor any ingest path pays, and reports events/s for both
 * and their ratio in bench/results/ingest.json and as a markdown line in bench/results/ingest.md.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { dropDatabase, ensureDatabase, runMigrations } from '@closebook/platform';
import { clearRedisPrefix, REDIS_URL, runScope } from './lib/fixture';
import { createOrganization, freePort, HttpClient, startChild, stopChild } from './lib/processes';

interface Options {
  events: number;
  batch: number;
  clients: number;
  customers: number;
  duplicateRate: number;
}

const ROOT = join(__dirname, '..', '..');
const RESULTS = join(ROOT, 'bench', 'results');

function options(argv: string[]): Options {
  const o: Options = { events: 1_000_000, batch: 10_000, clients: 4, customers: 100, duplicateRate: 0.01 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    const n = Number(value);
    if (flag === '--events') o.events = n;
    else if (flag === '--batch') o.batch = n;
    else if (flag === '--clients') o.clients = n;
    else if (flag === '--customers') o.customers = n;
    else if (flag === '--duplicates') o.duplicateRate = n;
    else continue;
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} needs a positive number`);
    i++;
  }
  if (o.batch > 10_000) throw new Error('--batch is at most 10,000 (the API limit)');
  return o;
}

const log = (msg: string) => console.log(`[bench:ingest] ${msg}`);

interface Row {
  event_id: string;
  customer_id: string;
  event_name: string;
  timestamp: string;
  properties: Record<string, string | number>;
}

/** Pre-serialised batches (so the client spends its CPU on sending, not on JSON), 1% duplicates. */
function makeBatches(o: Options, customers: string[]): { bodies: Buffer[]; unique: Row[]; sent: number; duplicates: number } {
  const now = Date.now();
  const monthStart = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), 1);
  const span = Math.max(60_000, Math.min(now - monthStart, 24 * 3_600_000) - 60_000);
  const unique: Row[] = [];
  const bodies: Buffer[] = [];
  let sent = 0;
  let duplicates = 0;
  const batches = Math.ceil(o.events / o.batch);
  for (let b = 0; b < batches; b++) {
    const size = Math.min(o.batch, o.events - sent);
    const items: Row[] = [];
    for (let i = 0; i < size; i++) {
      const dup = unique.length > 0 && (sent + i + 1) % Math.round(1 / o.duplicateRate) === 0;
      if (dup) {
        items.push(unique[Math.floor(Math.random() * unique.length)]);
        duplicates++;
        continue;
      }
      const row: Row = {
        event_id: randomUUID(),
        customer_id: customers[Math.floor(Math.random() * customers.length)],
        event_name: 'api.call',
        timestamp: new Date(now - 60_000 - Math.floor(Math.random() * span)).toISOString(),
        properties: { environment: i % 4 ? 'prod' : 'preview', region: 'eu', bytes: 1000 + (i % 5000), endpoint: '/v1/things' },
      };
      unique.push(row);
      items.push(row);
    }
    sent += size;
    bodies.push(Buffer.from(JSON.stringify({ events: items })));
  }
  return { bodies, unique, sent, duplicates };
}

async function sendAll(http: HttpClient, key: string, bodies: Buffer[], clients: number) {
  let next = 0;
  const totals = { accepted: 0, duplicates: 0, rejected: 0, requests: 0 };
  const latencies: number[] = [];
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= bodies.length) return;
      const t0 = process.hrtime.bigint();
      const res = await http.request('POST', '/v1/events', key, bodies[i]);
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (res.status !== 200) throw new Error(`batch ${i}: HTTP ${res.status} ${JSON.stringify(res.body).slice(0, 500)}`);
      totals.accepted += res.body.accepted;
      totals.duplicates += res.body.duplicates;
      totals.rejected += res.body.rejected.length;
      totals.requests++;
    }
  };
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: clients }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]);
  return { ...totals, seconds, p50_ms: pct(0.5), p99_ms: pct(0.99) };
}

/** COPY of the same distinct rows into a bare table with the same unique index, split over `clients` connections. */
async function copyBaseline(url: string, orgId: string, rows: Row[], customerIds: Map<string, string>, clients: number) {
  const setup = new Client({ connectionString: url });
  await setup.connect();
  await setup.query(`create table bench_copy_events (organization_id uuid not null, event_id text collate "C" not null, customer_id uuid not null,
    event_name text not null, ts timestamptz not null, properties jsonb not null, received_at timestamptz not null default now())`);
  await setup.query('create unique index bench_copy_events_key on bench_copy_events (organization_id, event_id)');
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n');
  const parts: Buffer[] = [];
  const per = Math.ceil(rows.length / clients);
  for (let c = 0; c < clients; c++) {
    const lines = rows
      .slice(c * per, (c + 1) * per)
      .map((r) => `${orgId}\t${esc(r.event_id)}\t${customerIds.get(r.customer_id)}\t${esc(r.event_name)}\t${r.timestamp}\t${esc(JSON.stringify(r.properties))}\n`);
    parts.push(Buffer.from(lines.join('')));
  }
  const conns = await Promise.all(
    parts.map(async () => {
      const c = new Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  const t0 = process.hrtime.bigint();
  await Promise.all(
    parts.map((buf, i) =>
      pipeline(Readable.from([buf]), conns[i].query(copyFrom('copy bench_copy_events (organization_id, event_id, customer_id, event_name, ts, properties) from stdin'))),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const [{ n }] = (await setup.query('select count(*)::int as n from bench_copy_events')).rows;
  await Promise.all(conns.map((c) => c.end()));
  await setup.end();
  return { rows: n as number, seconds };
}

/**
 * Starts the compiled worker and waits until the organization has no dirty (subscription, period)
 * left; checks that the rollups count every stored event once.
 */
async function rollupCatchUp(url: string, env: NodeJS.ProcessEnv, orgId: string, expected: number) {
  const worker = startChild('worker', env);
  const pg = new Client({ connectionString: url });
  await pg.connect();
  const t0 = process.hrtime.bigint();
  try {
    for (;;) {
      if (worker.exitCode !== null) return { error: `the worker exited with code ${worker.exitCode}` };
      const [{ dirty }] = (await pg.query('select count(*)::int as dirty from usage_rollup_dirty where organization_id = $1', [orgId])).rows;
      if (dirty === 0) break;
      if (Number(process.hrtime.bigint() - t0) / 1e9 > 600) return { error: 'rollups did not catch up in 10 minutes' };
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const [{ pairs, events }] = (
      await pg.query(
        `select (select count(*)::int from usage_rollup_periods where organization_id = $1) as pairs,
                (select coalesce(sum(event_count), 0)::int from usage_rollups where organization_id = $1) as events`,
        [orgId],
      )
    ).rows;
    if (events !== expected) return { error: `the rollups cover ${events} events, expected ${expected}` };
    return { seconds, pairs: pairs as number, events: events as number };
  } finally {
    await pg.end();
    await stopChild(worker);
  }
}

export async function main(argv: string[]) {
  const o = options(argv);
  const { url, database, prefix } = runScope();
  log(`database ${database}, ${o.events.toLocaleString('en-US')} events in batches of ${o.batch} from ${o.clients} clients, ${o.customers} customers`);
  await ensureDatabase(url);
  let child: ChildProcess | null = null;
  let client: HttpClient | null = null;
  try {
    await runMigrations(url);
    const port = await freePort();
    client = new HttpClient(port);
    const http = client;
    const env = { ...process.env, DATABASE_URL: url, REDIS_URL, QUEUE_PREFIX: prefix, PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: 'production' };

    // An organization and its admin key, through the platform's own service (as `cli org create` does).
    const { orgId, adminKey } = await createOrganization(url, 'Bench');

    child = startChild('api', env);
    await http.waitHealthy(child);
    const ingestKey = (await http.expect(201, 'ingest key', 'POST', '/v1/api-keys', adminKey, { role: 'ingest' })).api_key as string;

    // Catalog, customers and subscriptions through the API (the dirty-marking join does real work).
    await http.expect(201, 'product', 'POST', '/v1/products', adminKey, { key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await http.expect(201, 'plan', 'POST', '/v1/plans', adminKey, { key: 'starter', name: 'Starter', currency: 'USD', interval: 'month' });
    await http.expect(201, 'plan version', 'POST', '/v1/plans/starter/versions', adminKey, {
      products: [{ product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } }],
    });
    const customers = Array.from({ length: o.customers }, (_, i) => `bench-customer-${i}`);
    const customerIds = new Map<string, string>();
    const monthAgo = new Date(Date.now() - 40 * 86_400_000).toISOString();
    for (const c of customers) {
      const body = await http.expect(201, 'customer', 'POST', '/v1/customers', adminKey, { external_id: c, name: c, currency: 'USD' });
      customerIds.set(c, body.id);
      await http.expect(201, 'subscription', 'POST', `/v1/customers/${c}/subscriptions`, adminKey, { plan_key: 'starter', started_at: monthAgo });
    }

    log('generating events…');
    const batches = makeBatches(o, customers);
    log(`${batches.bodies.length} batches, ${(batches.bodies.reduce((n, b) => n + b.length, 0) / 1e6).toFixed(0)} MB of JSON; sending…`);
    http.fresh();
    const api = await sendAll(http, ingestKey, batches.bodies, o.clients);
    const apiRate = batches.sent / api.seconds;
    log(`API: ${batches.sent.toLocaleString('en-US')} events in ${api.seconds.toFixed(2)} s = ${Math.round(apiRate).toLocaleString('en-US')} events/s (accepted ${api.accepted}, duplicates ${api.duplicates}, rejected ${api.rejected}; p50 ${api.p50_ms} ms, p99 ${api.p99_ms} ms per batch)`);

    const pg = new Client({ connectionString: url });
    await pg.connect();
    const [{ events, keys, dirty }] = (
      await pg.query(
        `select (select count(*)::int from usage_events where organization_id = $1) as events,
                (select count(*)::int from usage_event_keys where organization_id = $1) as keys,
                (select count(*)::int from usage_rollup_dirty where organization_id = $1) as dirty`,
        [orgId],
      )
    ).rows;
    const version = (await pg.query('show server_version')).rows[0].server_version as string;
    await pg.end();
    const expectedUnique = batches.unique.length;
    if (events !== expectedUnique || keys !== expectedUnique || api.accepted !== expectedUnique) {
      throw new Error(`stored ${events} events and ${keys} keys, accepted ${api.accepted}; expected ${expectedUnique}`);
    }
    log(`stored ${events.toLocaleString('en-US')} distinct events (${batches.duplicates.toLocaleString('en-US')} duplicates refused), ${dirty} (subscription, period) pairs marked dirty`);

    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
    child = null;

    // Rollup catch-up: a worker process rolls up everything ingest marked dirty.
    log('rolling up (a worker process)…');
    const rollup = await rollupCatchUp(url, env, orgId, expectedUnique);
    if (rollup.error) log(`rollup phase failed: ${rollup.error}`);
    else log(`rollups: ${rollup.pairs} (subscription, period) pairs over ${expectedUnique.toLocaleString('en-US')} events in ${rollup.seconds!.toFixed(2)} s`);

    log('COPY baseline…');
    const copy = await copyBaseline(url, orgId, batches.unique, customerIds, o.clients);
    const copyRate = copy.rows / copy.seconds;
    const ratio = apiRate / copyRate;
    log(`COPY: ${copy.rows.toLocaleString('en-US')} rows in ${copy.seconds.toFixed(2)} s = ${Math.round(copyRate).toLocaleString('en-US')} rows/s`);
    log(`ratio API / COPY = ${ratio.toFixed(2)}`);

    const result = {
      benchmark: 'ingest',
      at: new Date().toISOString(),
      host: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version, postgres: version },
      options: { events: o.events, batch: o.batch, clients: o.clients, customers: o.customers, duplicate_rate: o.duplicateRate },
      api: {
        events_sent: batches.sent,
        accepted: api.accepted,
        duplicates: api.duplicates,
        rejected: api.rejected,
        requests: api.requests,
        seconds: +api.seconds.toFixed(3),
        events_per_s: Math.round(apiRate),
        batch_p50_ms: api.p50_ms,
        batch_p99_ms: api.p99_ms,
      },
      copy: { rows: copy.rows, seconds: +copy.seconds.toFixed(3), rows_per_s: Math.round(copyRate), connections: o.clients },
      rollup: rollup.error ? { error: rollup.error } : { pairs: rollup.pairs, events: rollup.events, seconds: +rollup.seconds!.toFixed(3) },
      ratio: +ratio.toFixed(3),
    };
    if (!existsSync(RESULTS)) mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'ingest.json'), `${JSON.stringify(result, null, 2)}\n`);
    const md = join(RESULTS, 'ingest.md');
    if (!existsSync(md)) {
      writeFileSync(md, '| date | host | events | batch × clients | API events/s | COPY rows/s | ratio | p50 / p99 per batch | rollup catch-up |\n|---|---|---|---|---|---|---|---|---|\n');
    }
    const rolled = rollup.error ? 'n/a' : `${rollup.seconds!.toFixed(1)} s`;
    const line = `| ${result.at.slice(0, 16).replace('T', ' ')} | ${result.host.cpus} cpu, PG ${version.split(' ')[0]} | ${o.events.toLocaleString('en-US')} (${batches.duplicates.toLocaleString('en-US')} dup) | ${o.batch} × ${o.clients} | ${result.api.events_per_s.toLocaleString('en-US')} | ${result.copy.rows_per_s.toLocaleString('en-US')} | ${result.ratio} | ${api.p50_ms} / ${api.p99_ms} ms | ${rolled} |`;
    appendFileSync(md, `${line}\n`);
    log(`wrote bench/results/ingest.json and a line in bench/results/ingest.md:\n${line}`);
    return result;
  } finally {
    await stopChild(child);
    client?.close();
    await dropDatabase(url).catch((e) => log(`could not drop ${url}: ${e.message}`));
    await clearRedisPrefix(prefix).catch((e) => log(`could not clear ${prefix}: ${e.message}`));
  }
}
