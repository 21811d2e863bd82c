/**
 * Month-end close at scale: `npm run bench -- close [--subscriptions 10000] [--events 10000000] [--profile 1]
 *   [--seed 1] [--rollup-lanes 2] [--rollup-page N] [--rollups-only 1]` (the last three tune and time the
 *   rollup stage alone, beside its plain GROUP BY).
 *
 * On `closebook_bench_close` (dropped, recreated, migrated) it starts the API in this process, creates
 * the demo's catalog (six metered dimensions, four plans) and `--subscriptions` customers subscribed
 * from the start of last month through HTTP, generates `--events` usage events in last month with
 * set-based SQL, then times each stage of the month-end through the project's own services:
 *
 *   rollups        RollupsService.processDirty (what month-end work runs), against the physical limit
 *                  beside it: one plain INSERT INTO bench_rollups SELECT … GROUP BY over the same events
 *   rating         InvoicingJobs.rateBatch over batches of 200 ended periods, 4 at a time (what the
 *                  period-end flow's children run with WORKER_CONCURRENCY=4)
 *   finalization   InvoicesService.finalizeDue until no draft is left (ledger posting is inside it:
 *                  its share is timed by wrapping LedgerPostingHook.invoicesFinalized)
 *   month-end      CloseService.monthEnd (revenue recognition, usage accruals, late usage)
 *   reconciliation ReconciliationRunsService.runNow — all six checks (per-check times from the capture)
 *
 * Results: bench/results/close.json and a line in bench/results/close.md. With `--profile 1` each
 * stage runs under the V8 sampling profiler and the JSON carries its top self-time functions and how
 * much of the wall time this process was on a CPU (the rest is PostgreSQL).
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import type { INestApplication } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { OrganizationsService } from '@closebook/platform';
import { RollupsService } from '@closebook/metering';
import { InvoicesService, InvoicingJobs, LedgerPostingHook, PeriodRatingService, RATING_BATCH_SIZE } from '@closebook/invoicing';
import { CloseService, ReconciliationRunsService } from '@closebook/reconciliation';
import {
  Api,
  benchUrl,
  clearRedisPrefix,
  fmt,
  freshDatabase,
  generateEvents,
  hostInfo,
  maintenanceUrl,
  numberFlags,
  plainGroupBy,
  pool,
  profiled,
  seconds,
  seedCatalog,
  seedSubscriptions,
  utcMonth,
  ym,
  type ProfileSummary,
} from './lib/fixture';

const ROOT = join(__dirname, '..', '..');
const RESULTS = join(ROOT, 'bench', 'results');
const log = (msg: string) => console.log(`[bench:close] ${msg}`);

export interface CloseWorld {
  app: INestApplication;
  orm: MikroORM;
  orgId: string;
  finance: Api;
  month: string;
  from: Date;
  to: Date;
  subscriptions: number;
}

/**
 * Starts the API in this process on `url` and creates an organization (draft window 0, so drafts are
 * due at once), the catalog and the subscriptions; opening invoices are finalized (last month's
 * documents, not part of this close).
 */
export async function buildWorld(url: string, prefix: string, subscriptions: number, say: (s: string) => void): Promise<CloseWorld> {
  Object.assign(process.env, { DATABASE_URL: url, QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn', DB_POOL_MAX: '10' });
  // Loaded after the environment is set: configuration is read once, at module creation.
  const { createApiApp } = await import('../apps/api/src/create-app');
  const app = await createApiApp({ logger: false });
  await app.listen(0, '127.0.0.1');
  const base = `${(await app.getUrl()).replace('[::1]', '127.0.0.1')}/v1`;
  const orm = app.get<MikroORM>(MikroORM);
  const { organization, adminKey } = await app.get(OrganizationsService).createWithAdminKey(orm.em.fork(), 'Bench close');
  await orm.em.getConnection().execute('update organizations set draft_window_minutes = 0 where id = ?', [organization.id]);
  const admin = new Api(base, adminKey.apiKey);
  const finance = admin.with((await admin.post('/api-keys', { role: 'finance', name: 'bench finance' })).api_key);
  await seedCatalog(finance);
  const now = new Date();
  const from = utcMonth(now.getUTCFullYear(), now.getUTCMonth() - 1);
  const to = utcMonth(now.getUTCFullYear(), now.getUTCMonth());
  const t0 = process.hrtime.bigint();
  await seedSubscriptions(finance, subscriptions, from, say);
  say(`${fmt(subscriptions)} customers and subscriptions through the API in ${seconds(t0).toFixed(1)} s`);
  const t1 = process.hrtime.bigint();
  const invoices = app.get(InvoicesService, { strict: false });
  const opening = await orm.em.getConnection().execute<{ id: string }[]>(`select id from invoices where organization_id = ? and status = 'draft' and kind = 'opening'`, [organization.id]);
  await pool(opening, 4, (r) => invoices.finalize(orm.em.fork(), organization.id, r.id));
  say(`${fmt(opening.length)} opening invoices finalized (set-up) in ${seconds(t1).toFixed(1)} s`);
  return { app, orm, orgId: organization.id, finance, month: ym(from), from, to, subscriptions };
}

/** Starts the API in this process on a database whose set-up is done (a clone of a seed). */
async function openWorld(url: string, prefix: string, subscriptions: number): Promise<CloseWorld> {
  Object.assign(process.env, { DATABASE_URL: url, QUEUE_PREFIX: prefix, LOG_LEVEL: 'warn', DB_POOL_MAX: '10' });
  const { createApiApp } = await import('../apps/api/src/create-app');
  const app = await createApiApp({ logger: false });
  await app.listen(0, '127.0.0.1');
  const orm = app.get<MikroORM>(MikroORM);
  const [org] = await orm.em.getConnection().execute<{ id: string }[]>(`select id from organizations where name = 'Bench close'`);
  const [{ month }] = await orm.em.getConnection().execute<{ month: string }[]>(`select to_char(min(ts) at time zone 'UTC', 'YYYY-MM') as month from usage_events where organization_id = ?`, [org.id]);
  const [y, m] = month.split('-').map(Number);
  const from = utcMonth(y, m - 1);
  const to = utcMonth(y, m);
  return { app, orm, orgId: org.id, finance: null as unknown as Api, month, from, to, subscriptions };
}

/**
 * The set-up (subscriptions through the API, 10M events) takes ~6 minutes at the size, so
 * `--seed 1` keeps it as a template database named for its size, month and migrations, and the next
 * run with `--seed 1` clones it instead. Without the flag every run builds its own.
 */
function seedName(subscriptions: number, events: number): string {
  const migrations = createHash('md5');
  const dir = join(ROOT, 'migrations');
  for (const f of readdirSync(dir).sort()) migrations.update(readFileSync(join(dir, f)));
  const now = new Date();
  return `closebook_bench_close_seed_${subscriptions}_${events}_${ym(utcMonth(now.getUTCFullYear(), now.getUTCMonth() - 1)).replace('-', '')}_${migrations.digest('hex').slice(0, 8)}`;
}

async function cloneSeed(seed: string, url: string): Promise<boolean> {
  const admin = new Client({ connectionString: maintenanceUrl() });
  await admin.connect();
  try {
    const found = await admin.query('select 1 from pg_database where datname = $1', [seed]);
    if (!found.rowCount) return false;
    const db = new URL(url).pathname.slice(1);
    await admin.query(`drop database if exists ${db} with (force)`);
    await admin.query(`create database ${db} template ${seed}`);
    return true;
  } finally {
    await admin.end();
  }
}

async function saveSeed(url: string, seed: string): Promise<void> {
  const admin = new Client({ connectionString: maintenanceUrl() });
  await admin.connect();
  try {
    const db = new URL(url).pathname.slice(1);
    await admin.query(`drop database if exists ${seed}`);
    await admin.query(`create database ${seed} template ${db}`);
  } finally {
    await admin.end();
  }
}

/** The rating stage as the period-end flow runs it: batches of 200 ended periods, `lanes` batches at a time. */
export async function rateEndedPeriods(world: CloseWorld, lanes: number) {
  const jobs = world.app.get(InvoicingJobs, { strict: false });
  const groups = await world.orm.em.getConnection().execute<{ day: string; ids: string[] }[]>(
    `select to_char(bp.period_end at time zone 'UTC', 'YYYY-MM-DD') as day, array_agg(bp.id::text order by bp.subscription_id, bp.seq) as ids
     from billing_periods bp
     where bp.organization_id = ? and bp.period_end <= now()
       and not exists (select 1 from invoices i where i.kind = 'period' and i.billing_period_id = bp.id)
     group by 1 order by 1`,
    [world.orgId],
  );
  const batches: { day: string; ids: string[] }[] = [];
  for (const g of groups) for (let i = 0; i < g.ids.length; i += RATING_BATCH_SIZE) batches.push({ day: g.day, ids: g.ids.slice(i, i + RATING_BATCH_SIZE) });
  const out = { periods: 0, rated: 0, existing: 0, failed: 0, batches: batches.length };
  await pool(batches, lanes, async (b) => {
    const r = await jobs.rateBatch({ organization_id: world.orgId, period_end: b.day, billing_period_ids: b.ids });
    out.periods += b.ids.length;
    out.rated += r.rated;
    out.existing += r.existing;
    out.failed += r.failed.length;
  });
  return out;
}

interface Stage {
  name: string;
  seconds: number;
  detail: Record<string, unknown>;
  profile?: ProfileSummary | null;
}

export async function main(argv: string[]) {
  const o = numberFlags(argv, { subscriptions: 10_000, events: 10_000_000, profile: 0, seed: 0, rollupLanes: 2, rollupPage: 0, rollupsOnly: 0 });
  const url = benchUrl('close');
  const prefix = 'cbbench_close';
  log(`database closebook_bench_close: ${fmt(o.subscriptions)} subscriptions, ${fmt(o.events)} events in one month`);
  await clearRedisPrefix(prefix);
  const seed = o.seed > 0 ? seedName(o.subscriptions, o.events) : null;
  const fromSeed = seed !== null && (await cloneSeed(seed, url));
  if (!fromSeed) await freshDatabase(url);
  let world: CloseWorld | null = null;
  const queries = countQueries();
  try {
    let gen = { seconds: 0 };
    if (fromSeed) {
      world = await openWorld(url, prefix, o.subscriptions);
      log(`set-up cloned from ${seed} (--seed 1): ${world.month}`);
    } else {
      world = await buildWorld(url, prefix, o.subscriptions, log);
      log(`set-up sent ${fmt(queries.count)} statements (${(queries.count / o.subscriptions).toFixed(1)} per subscription with its customer and opening invoice)`);
      log(`generating ${fmt(o.events)} events in ${world.month} (INSERT … SELECT … generate_series)…`);
      gen = await generateEvents(url, world.orgId, world.from, world.to, o.events, log);
      log(`events generated in ${gen.seconds.toFixed(1)} s (${fmt(o.events / gen.seconds)}/s)`);
      if (seed) {
        await world.app.close();
        await saveSeed(url, seed);
        log(`set-up kept as ${seed} for the next run with --seed 1`);
        world = await openWorld(url, prefix, o.subscriptions);
      }
    }
    const w = world;
    const conn = w.orm.em.getConnection();
    const pg = new Client({ connectionString: url });
    await pg.connect();
    await pg.query('checkpoint');
    const [{ dirty }] = (await pg.query('select count(*)::int as dirty from usage_rollup_dirty where organization_id = $1', [w.orgId])).rows;
    const stages: Stage[] = [];
    const stage = async (name: string, fn: () => Promise<Record<string, unknown>>) => {
      log(`${name}…`);
      const t0 = process.hrtime.bigint();
      const q0 = queries.count;
      const { value, profile } = await profiled(o.profile > 0, fn);
      const s = { name, seconds: +seconds(t0).toFixed(2), detail: { ...value, queries: queries.count - q0 } as Record<string, unknown>, profile };
      stages.push(s);
      log(`${name}: ${s.seconds.toFixed(2)} s ${JSON.stringify(s.detail)}`);
      return s;
    };

    // 1. Rollups (the month-end path: every dirty pair, two at a time).
    const rollups = app(w).get(RollupsService, { strict: false });
    const rollupStage = await stage('rollups', async () => {
      let processed = 0;
      for (let i = 0; i < 1000; i++) {
        const r = await rollups.processDirty(w.orm.em.fork(), { organizationId: w.orgId, budgetMs: 600_000, concurrency: o.rollupLanes, ...(o.rollupPage > 0 ? { batch: o.rollupPage } : {}) });
        processed += r.processed;
        if (!r.remaining && r.busy === 0) break;
      }
      const [{ rows, events }] = await conn.execute(`select count(*)::int as rows, coalesce(sum(event_count), 0)::bigint as events from usage_rollups where organization_id = ?`, [w.orgId]);
      return { pairs: processed, rollup_rows: rows, events_covered: Number(events) };
    });
    log('physical limit: plain INSERT … SELECT … GROUP BY over the same events…');
    const plain = await plainGroupBy(url, w.orgId, w.from, w.to);
    const rollupRatio = rollupStage.seconds / plain.seconds;
    log(`plain GROUP BY: ${plain.seconds.toFixed(2)} s (${fmt(plain.rows)} groups, ${fmt(plain.events)} events); rollups / plain = ${rollupRatio.toFixed(2)}`);
    if (Number(rollupStage.detail.events_covered) !== plain.events) log(`WARNING: the rollups cover ${rollupStage.detail.events_covered} events, the plain GROUP BY ${plain.events}`);
    if (o.rollupsOnly > 0) return { rollups_s: rollupStage.seconds, plain_s: plain.seconds, ratio: rollupRatio };

    // 2. Rating (the period-end flow's children).
    // As the flow's parent ends a period end: the statistics of what the children wrote.
    await stage('rating', async () => {
      const r = await rateEndedPeriods(w, 4);
      const analyzed = await app(w).get(PeriodRatingService, { strict: false }).refreshStatistics(w.orm.em.fork(), r.rated);
      return { ...r, analyzed };
    });

    // 3. Finalization, ledger posting inside.
    const hook = app(w).get(LedgerPostingHook, { strict: false });
    // Every finalization posts through the set-based hook (one invoice is a set of one).
    const original = hook.invoicesFinalized.bind(hook);
    // Wall time during which at least one posting runs: calls that overlap (organizations finalized
    // side by side) are counted once, so the share stays a share of the stage.
    let postingNs = 0n;
    let posted = 0;
    let active = 0;
    let since = 0n;
    hook.invoicesFinalized = async (...args: Parameters<typeof original>) => {
      if (active++ === 0) since = process.hrtime.bigint();
      try {
        return await original(...args);
      } finally {
        if (--active === 0) postingNs += process.hrtime.bigint() - since;
        posted += args[1].length;
      }
    };
    const invoices = app(w).get(InvoicesService, { strict: false });
    const fin = await stage('finalization', async () => {
      let finalized = 0;
      let failed = 0;
      for (let i = 0; i < 1000; i++) {
        const r = await invoices.finalizeDue(w.orm.em.fork(), new Date());
        finalized += r.finalized;
        failed += r.failed;
        if (!r.more) break;
      }
      const [{ entries }] = await conn.execute(`select count(*)::int as entries from journal_entries where organization_id = ? and source_type = 'invoice'`, [w.orgId]);
      return { finalized, failed, invoice_entries: entries, posting_hook_s: +(Number(postingNs) / 1e9).toFixed(2), posting_hook_calls: posted };
    });
    hook.invoicesFinalized = original;
    const postingShare = Number(postingNs) / 1e9 / fin.seconds;

    // 4. Month-end ledger work.
    const close = app(w).get(CloseService, { strict: false });
    await stage('month_end', async () => {
      const r = await close.monthEnd(w.orm.em.fork(), w.orgId, w.month);
      return { rollups: r.rollups, recognition_entries: r.recognition.entries_posted, accruals: r.accruals.accrued, late_usage: r.late_usage.recorded };
    });

    // 5. Reconciliation: all six checks.
    const runs = app(w).get(ReconciliationRunsService, { strict: false });
    await stage('reconciliation', async () => {
      const run = await runs.runNow(w.orm.em.fork(), w.orgId, w.month, { startedBy: 'bench' });
      const checks = Object.fromEntries(
        Object.entries(
          (run.capture as { checks: Record<string, { status: string; items: number; failed: number; started_at: string; finished_at: string; population?: { count: number; unit: string } }> }).checks,
        ).map(([k, c]) => [
          k,
          { status: c.status, population: c.population?.count ?? null, items: c.items, failed: c.failed, seconds: +((Date.parse(c.finished_at) - Date.parse(c.started_at)) / 1000).toFixed(2) },
        ]),
      );
      // What each check compared: a check that compared nothing says so (not_applicable), never passes on nothing.
      for (const [k, c] of Object.entries(checks)) log(`  ${k.padEnd(16)} ${String(c.status).padEnd(14)} population ${c.population ?? '—'}, ${c.items} items, ${c.seconds} s`);
      return { status: run.status, checks };
    });

    const total = stages.reduce((s, x) => s + x.seconds, 0);
    const version = (await pg.query('show server_version')).rows[0].server_version as string;
    await pg.end();
    const result = {
      benchmark: 'close',
      at: new Date().toISOString(),
      host: { ...hostInfo(), postgres: version },
      options: { subscriptions: o.subscriptions, events: o.events, month: w.month },
      setup: { events_generated_s: +gen.seconds.toFixed(1), dirty_pairs: dirty },
      stages,
      rollups_vs_plain_group_by: { rollups_s: rollupStage.seconds, plain_s: +plain.seconds.toFixed(2), ratio: +rollupRatio.toFixed(2), groups: plain.rows, events: plain.events, target_ratio: 2 },
      ledger_posting_share_of_finalization: +postingShare.toFixed(2),
      total_s: +total.toFixed(2),
      targets: { total_under_s: 120, total_met: total < 120, rollups_ratio_met: rollupRatio <= 2 },
    };
    if (!existsSync(RESULTS)) mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'close.json'), `${JSON.stringify(result, null, 2)}\n`);
    const md = join(RESULTS, 'close.md');
    if (!existsSync(md)) {
      writeFileSync(md, '# Month-end close at scale (`npm run bench -- close`)\n\n| date | host | subscriptions | events | rollups | plain GROUP BY | ratio | rating | finalization (ledger share) | month-end | reconciliation | total |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n');
    }
    const s = (n: string) => `${stages.find((x) => x.name === n)!.seconds.toFixed(1)} s`;
    const line = `| ${result.at.slice(0, 16).replace('T', ' ')} | ${result.host.cpus} cpu, PG ${version.split(' ')[0]} | ${fmt(o.subscriptions)} | ${fmt(o.events)} | ${s('rollups')} | ${plain.seconds.toFixed(1)} s | ${rollupRatio.toFixed(2)} | ${s('rating')} | ${s('finalization')} (${Math.round(postingShare * 100)} %) | ${s('month_end')} | ${s('reconciliation')} | ${total.toFixed(1)} s |`;
    appendFileSync(md, `${line}\n`);
    log(`wrote bench/results/close.json and a line in bench/results/close.md:\n${line}`);
    return result;
  } finally {
    if (world) await world.app.close().catch(() => undefined);
    await clearRedisPrefix(prefix).catch(() => undefined);
  }
}

const app = (w: CloseWorld) => w.app;

/**
 * Counts the statements this process sends to PostgreSQL (every pg client: the ORM's pool and the
 * raw ones): round trips per item are what a per-row code path costs before anything else.
 */
function countQueries(): { count: number } {
  const counter = { count: 0 };
  const proto = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    counter.count++;
    return original.apply(this, args);
  };
  return counter;
}
