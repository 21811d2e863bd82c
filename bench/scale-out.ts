/**
 * Rating and reconciliation with one and with two worker processes: `npm run bench -- scale-out
 * [--subscriptions 10000] [--events 1000000] [--concurrency 2]` (WORKER_CONCURRENCY of each worker: two jobs in flight per process on a 2-core box; see results).
 *
 * Set-up (once): `closebook_bench_scale_out` (dropped, recreated, migrated), the demo's catalog and
 * `--subscriptions` subscriptions from the start of last month through the API (opening invoices
 * finalized), `--events` events in last month (set-based SQL), rollups brought current with
 * RollupsService.processDirty. The database is then cloned (`CREATE DATABASE … TEMPLATE`) into
 * `closebook_bench_scale_out_2`, so both runs start from the same state.
 *
 * Each run starts N compiled workers (`scripts/start.js worker`, WORKER_CONCURRENCY 4 each) on its
 * database and queue prefix, then through the project's services in this process:
 *   rating          PeriodEndFlows.start — the period-end BullMQ flow (children of 200 periods) the
 *                   workers share; timed from the flow's start until every ended period has its
 *                   invoice (also: first to last invoice written, from the invoices' timestamps)
 *   reconciliation  ReconciliationRunsService.start — the run's BullMQ flow (one child per check),
 *                   timed until the run is finished
 * Results: bench/results/scale-out.json and a line in bench/results/scale-out.md.
 */
import { type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { Queue } from 'bullmq';
import { MikroORM } from '@mikro-orm/postgresql';
import { RollupsService } from '@closebook/metering';
import { PeriodEndFlows } from '@closebook/invoicing';
import { ReconciliationRunsService } from '@closebook/reconciliation';
import { startChild, stopChild } from './lib/processes';
import { buildWorld } from './close';
import { benchUrl, clearRedisPrefix, fmt, freshDatabase, generateEvents, hostInfo, maintenanceUrl, numberFlags, REDIS_URL, seconds } from './lib/fixture';

const ROOT = join(__dirname, '..', '..');
const RESULTS = join(ROOT, 'bench', 'results');
const log = (msg: string) => console.log(`[bench:scale-out] ${msg}`);

async function waitWorkers(prefix: string, n: number) {
  const q = new Queue('billing', { connection: { url: REDIS_URL } as never, prefix });
  try {
    for (let i = 0; i < 600; i++) {
      const workers = await q.getWorkers().catch(() => []);
      if (workers.length >= n) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  } finally {
    await q.close();
  }
}

async function phase(url: string, prefix: string, orgId: string, month: string, workers: number, concurrency: number) {
  await clearRedisPrefix(prefix);
  Object.assign(process.env, { DATABASE_URL: url, QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn' });
  const { createApiApp } = await import('../apps/api/src/create-app');
  const app = await createApiApp({ logger: false });
  const orm = app.get<MikroORM>(MikroORM);
  const env = { ...process.env, DATABASE_URL: url, REDIS_URL, QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn', NODE_ENV: 'production', WORKER_CONCURRENCY: String(concurrency) };
  const children: ChildProcess[] = [];
  const pg = new Client({ connectionString: url });
  await pg.connect();
  try {
    for (let i = 0; i < workers; i++) children.push(startChild('worker', env));
    const ready = await waitWorkers(prefix, workers);
    log(`${workers} worker(s) ${ready ? 'ready' : 'not seen in Redis after 60 s; going on'}`);
    const ended = async () =>
      (
        await pg.query(
          `select count(*)::int as total, count(i.id)::int as rated from billing_periods bp
           left join invoices i on i.kind = 'period' and i.billing_period_id = bp.id
           where bp.organization_id = $1 and bp.period_end <= now()`,
          [orgId],
        )
      ).rows[0] as { total: number; rated: number };
    // Rating: the period-end flow (the workers' own scheduler may have started it a moment earlier;
    // then this finds it running, and the invoices' timestamps still time it).
    const t0 = process.hrtime.bigint();
    const started = await app.get(PeriodEndFlows, { strict: false }).start(orm.em.fork(), new Date(), orgId);
    let state = await ended();
    while (state.rated < state.total && seconds(t0) < 1800) {
      await new Promise((r) => setTimeout(r, 200));
      state = await ended();
    }
    const ratingWall = seconds(t0);
    const [{ span }] = (
      await pg.query(`select extract(epoch from max(created_at) - min(created_at))::float as span from invoices where organization_id = $1 and kind = 'period'`, [orgId])
    ).rows;
    log(`${workers} worker(s): rating ${fmt(state.rated)} periods in ${ratingWall.toFixed(1)} s (first to last invoice ${Number(span).toFixed(1)} s; flow ${started.started.length ? 'started here' : 'already running'})`);
    // Reconciliation: the run's flow.
    const runs = app.get(ReconciliationRunsService, { strict: false });
    const t1 = process.hrtime.bigint();
    const run = await runs.start(orm.em.fork(), orgId, month, { startedBy: 'bench' });
    let status = 'queued';
    while (!['passed', 'failed', 'error'].includes(status) && seconds(t1) < 1800) {
      await new Promise((r) => setTimeout(r, 200));
      status = (await pg.query('select status from reconciliation_runs where id = $1', [run.id])).rows[0].status;
    }
    const reconWall = seconds(t1);
    const capture = (await pg.query('select capture from reconciliation_runs where id = $1', [run.id])).rows[0].capture as {
      checks: Record<string, { status: string; started_at: string; finished_at: string }>;
    };
    const checks = Object.fromEntries(Object.entries(capture.checks).map(([k, c]) => [k, +((Date.parse(c.finished_at) - Date.parse(c.started_at)) / 1000).toFixed(2)]));
    log(`${workers} worker(s): reconciliation ${status} in ${reconWall.toFixed(1)} s ${JSON.stringify(checks)}`);
    return {
      workers,
      rating: { periods: state.rated, of: state.total, wall_s: +ratingWall.toFixed(2), first_to_last_invoice_s: +Number(span).toFixed(2), periods_per_s: Math.round(state.rated / ratingWall) },
      reconciliation: { status, wall_s: +reconWall.toFixed(2), checks_s: checks },
    };
  } finally {
    await pg.end();
    for (const c of children) await stopChild(c);
    await app.close();
    await clearRedisPrefix(prefix).catch(() => undefined);
  }
}

export async function main(argv: string[]) {
  const o = numberFlags(argv, { subscriptions: 10_000, events: 1_000_000, concurrency: 2 });
  const url1 = benchUrl('scale_out');
  const url2 = benchUrl('scale_out_2');
  const prefix = 'cbbench_scale_out';
  log(`database closebook_bench_scale_out: ${fmt(o.subscriptions)} subscriptions, ${fmt(o.events)} events in one month`);
  await freshDatabase(url1);
  await clearRedisPrefix(prefix);
  const world = await buildWorld(url1, `${prefix}_setup`, o.subscriptions, log);
  const { orgId, month } = world;
  try {
    // Drafts stay drafts while the workers rate (their finalize-due scheduler would otherwise compete).
    await world.orm.em.getConnection().execute('update organizations set draft_window_minutes = 600 where id = ?', [orgId]);
    const gen = await generateEvents(url1, orgId, world.from, world.to, o.events, log);
    log(`events generated in ${gen.seconds.toFixed(1)} s; rollups (set-up)…`);
    const t0 = process.hrtime.bigint();
    const rollups = world.app.get(RollupsService, { strict: false });
    for (let i = 0; i < 1000; i++) {
      const r = await rollups.processDirty(world.orm.em.fork(), { organizationId: orgId, budgetMs: 600_000 });
      if (!r.remaining && r.busy === 0) break;
    }
    log(`rollups current in ${seconds(t0).toFixed(1)} s`);
  } finally {
    await world.app.close();
    await clearRedisPrefix(`${prefix}_setup`).catch(() => undefined);
  }
  // The same starting state for the second run.
  const admin = new Client({ connectionString: maintenanceUrl() });
  await admin.connect();
  try {
    await admin.query('drop database if exists closebook_bench_scale_out_2 with (force)');
    await admin.query('create database closebook_bench_scale_out_2 template closebook_bench_scale_out');
  } finally {
    await admin.end();
  }
  const one = await phase(url1, `${prefix}_1`, orgId, month, 1, o.concurrency);
  const two = await phase(url2, `${prefix}_2`, orgId, month, 2, o.concurrency);
  const pg = new Client({ connectionString: url1 });
  await pg.connect();
  const version = (await pg.query('show server_version')).rows[0].server_version as string;
  await pg.end();
  const result = {
    benchmark: 'scale-out',
    at: new Date().toISOString(),
    host: { ...hostInfo(), postgres: version },
    options: o,
    runs: [one, two],
    speedup: {
      rating_wall: +(one.rating.wall_s / two.rating.wall_s).toFixed(2),
      rating_first_to_last: +(one.rating.first_to_last_invoice_s / Math.max(0.001, two.rating.first_to_last_invoice_s)).toFixed(2),
      reconciliation: +(one.reconciliation.wall_s / two.reconciliation.wall_s).toFixed(2),
    },
    target: { rating_two_faster: two.rating.wall_s < one.rating.wall_s },
  };
  if (!existsSync(RESULTS)) mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'scale-out.json'), `${JSON.stringify(result, null, 2)}\n`);
  const md = join(RESULTS, 'scale-out.md');
  if (!existsSync(md)) {
    writeFileSync(md, '# Rating and reconciliation with one and two workers (`npm run bench -- scale-out`)\n\n| date | host | subscriptions | events | rating 1 worker | rating 2 workers | speedup | reconciliation 1 worker | reconciliation 2 workers | speedup |\n|---|---|---|---|---|---|---|---|---|---|\n');
  }
  const line = `| ${result.at.slice(0, 16).replace('T', ' ')} | ${result.host.cpus} cpu, PG ${version.split(' ')[0]}, load ${result.host.load_avg_1m} | ${fmt(o.subscriptions)} | ${fmt(o.events)} | ${one.rating.wall_s.toFixed(1)} s (${one.rating.periods_per_s}/s) | ${two.rating.wall_s.toFixed(1)} s (${two.rating.periods_per_s}/s) | ${result.speedup.rating_wall} | ${one.reconciliation.wall_s.toFixed(1)} s | ${two.reconciliation.wall_s.toFixed(1)} s | ${result.speedup.reconciliation} |`;
  appendFileSync(md, `${line}\n`);
  log(`wrote bench/results/scale-out.json and a line in bench/results/scale-out.md:\n${line}`);
  return result;
}
