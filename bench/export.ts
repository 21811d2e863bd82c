/**
 * Auditor workbook benchmark: `npm run bench -- export [--events N] [--customers N] [--keep]`.
 *
 * On a database of its own (created, migrated, dropped at the end) it builds a real month: a
 * catalog, customers and subscriptions through the compiled API, N usage events (default
 * 1,000,000) bulk-inserted with one `generate_series` statement into last month's partition, the
 * rollups recomputed and the period rated and finalized by a compiled worker. Then it runs
 * `npm run cli -- export --period … --out …` as a child process and samples the child's resident
 * memory (`/proc/<pid>/status`: VmRSS every 20 ms, and VmHWM, the kernel's own peak) until it exits.
 * It reports seconds, rows, file size and peak RSS against the targets (peak RSS < 400 MB,
 * ≤ 30 s for 1,000,000 events) in bench/results/export.json and as a markdown line in bench/results/export.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { Queue } from 'bullmq';
import { dropDatabase, ensureDatabase, redisConnection, runMigrations } from '@closebook/platform';
import { clearRedisPrefix, REDIS_URL, runScope } from './lib/fixture';
import { createOrganization, freePort, HttpClient, startChild, stopChild } from './lib/processes';

interface Options {
  events: number;
  customers: number;
  keep: boolean;
}

const ROOT = join(__dirname, '..', '..');
const RESULTS = join(ROOT, 'bench', 'results');
const TARGET_RSS_MB = 400;
const TARGET_SECONDS = 30;

const log = (msg: string) => console.log(`[bench:export] ${msg}`);

function options(argv: string[]): Options {
  const o: Options = { events: 1_000_000, customers: 1_000, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--keep') {
      o.keep = true;
      continue;
    }
    const n = Number(value);
    if (flag === '--events') o.events = n;
    else if (flag === '--customers') o.customers = n;
    else continue;
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} needs a positive integer`);
    i++;
  }
  return o;
}

async function waitFor(pg: Client, what: string, sql: string, params: unknown[], done: (row: any) => boolean, timeoutS = 900) {
  const t0 = Date.now();
  for (;;) {
    const row = (await pg.query(sql, params)).rows[0];
    if (done(row)) return { seconds: (Date.now() - t0) / 1000, row };
    if ((Date.now() - t0) / 1000 > timeoutS) throw new Error(`${what}: not done in ${timeoutS} s (${JSON.stringify(row)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function procStatus(pid: number): { rss: number; hwm: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Runs the export CLI and samples its memory until it exits. */
function runExport(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number | null; seconds: number; peakRssMb: number; hwmMb: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'cli.js'), ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    let peak = 0;
    let hwm = 0;
    const sample = () => {
      const s = child.pid ? procStatus(child.pid) : null;
      if (s) {
        peak = Math.max(peak, s.rss);
        hwm = Math.max(hwm, s.hwm);
      }
    };
    const timer = setInterval(sample, 20);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(timer);
      resolve({ code, seconds: Number(process.hrtime.bigint() - t0) / 1e9, peakRssMb: peak / 1024, hwmMb: hwm / 1024, stdout });
    });
  });
}

export async function main(argv: string[]) {
  const o = options(argv);
  const { url, database, prefix } = runScope();
  const exportsDir = mkdtempSync(join(os.tmpdir(), 'cb-bench-export-'));
  const now = new Date();
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const period = from.toISOString().slice(0, 7);
  log(`database ${database}, ${o.events.toLocaleString('en-US')} events of ${period} over ${o.customers} customers`);
  await ensureDatabase(url);
  let api: ChildProcess | null = null;
  let worker: ChildProcess | null = null;
  let http: HttpClient | null = null;
  const pg = new Client({ connectionString: url });
  try {
    await runMigrations(url);
    await pg.connect();
    const port = await freePort();
    const client = new HttpClient(port, 16);
    http = client;
    const env = { ...process.env, DATABASE_URL: url, REDIS_URL, QUEUE_PREFIX: prefix, PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: 'production', EXPORTS_DIR: exportsDir };
    const { orgId, adminKey } = await createOrganization(url, 'Bench export');
    // Drafts finalize at the first finalize-due run, so the ledger has the invoices' entries.
    await pg.query('update organizations set draft_window_minutes = 0 where id = $1', [orgId]);

    // --- catalog, customers, subscriptions through the API
    api = startChild('api', env);
    await client.waitHealthy(api);
    const t0 = Date.now();
    await client.expect(201, 'product', 'POST', '/v1/products', adminKey, { key: 'platform_fee', name: 'Platform fee', kind: 'recurring' });
    await client.expect(201, 'product', 'POST', '/v1/products', adminKey, { key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await client.expect(201, 'plan', 'POST', '/v1/plans', adminKey, { key: 'growth', name: 'Growth', currency: 'USD', interval: 'month' });
    await client.expect(201, 'plan version', 'POST', '/v1/plans/growth/versions', adminKey, {
      products: [
        { product_key: 'platform_fee', price: { model: 'flat', amount: '99' } },
        { product_key: 'api_calls', allowance: '500', price: { model: 'per_unit', unit_amount: '0.002' } },
      ],
    });
    const started = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() - 1, 1)).toISOString();
    const ids = Array.from({ length: o.customers }, (_, i) => `bench-customer-${String(i).padStart(5, '0')}`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (;;) {
          const i = next++;
          if (i >= ids.length) return;
          await client.expect(201, 'customer', 'POST', '/v1/customers', adminKey, { external_id: ids[i], name: ids[i], currency: 'USD', tax_rate: i % 3 === 0 ? '0.2' : '0' });
          await client.expect(201, 'subscription', 'POST', `/v1/customers/${ids[i]}/subscriptions`, adminKey, { plan_key: 'growth', started_at: started });
        }
      }),
    );
    await stopChild(api);
    api = null;
    log(`catalog, ${o.customers} customers and subscriptions in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // --- 1,000,000 events in one statement, spread over the month, round-robin over the customers
    let t = Date.now();
    await pg.query('select closebook_ensure_usage_partition($1::date)', [from.toISOString().slice(0, 10)]);
    const span = (to.getTime() - from.getTime()) / 1000 - 1;
    await pg.query(
      `with c as (select id, (row_number() over (order by external_id) - 1)::int as n from customers where organization_id = $1)
       insert into usage_events (organization_id, event_id, customer_id, event_name, ts, properties)
       select $1, 'bench-' || g, c.id, 'api.call', $2::timestamptz + make_interval(secs => (g::double precision / $3) * $4),
              jsonb_build_object('environment', case when g % 4 = 0 then 'preview' else 'prod' end, 'region', 'eu', 'bytes', 1000 + g % 5000, 'endpoint', '/v1/things')
       from generate_series(0, $3 - 1) g join c on c.n = g % $5`,
      [orgId, from.toISOString(), o.events, span, o.customers],
    );
    await pg.query(
      `insert into usage_rollup_dirty (subscription_id, period_start, organization_id)
       select bp.subscription_id, bp.period_start, bp.organization_id from billing_periods bp where bp.organization_id = $1 and bp.period_start = $2
       on conflict do nothing`,
      [orgId, from.toISOString()],
    );
    await pg.query('analyze usage_events');
    log(`${o.events.toLocaleString('en-US')} events inserted in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    // --- rollups, rating and finalization by a worker
    worker = startChild('worker', env);
    t = Date.now();
    await waitFor(pg, 'rollups', 'select count(*)::int as dirty from usage_rollup_dirty where organization_id = $1', [orgId], (r) => r.dirty === 0);
    log(`rollups in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    const billing = new Queue('billing', { connection: redisConnection(REDIS_URL), prefix });
    await billing.add('invoicing.period-end', { organization_id: orgId }, { jobId: `bench-period-end-${prefix}` });
    t = Date.now();
    await waitFor(
      pg,
      'rating',
      `select count(*)::int as n from invoices where organization_id = $1 and kind = 'period' and period_start = $2`,
      [orgId, from.toISOString()],
      (r) => r.n >= o.customers,
    );
    log(`period rated in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    await billing.add('invoicing.finalize-due', {}, { jobId: `bench-finalize-${prefix}` });
    t = Date.now();
    const fin = await waitFor(
      pg,
      'finalization',
      `select count(*) filter (where status = 'draft')::int as drafts, count(*)::int as n from invoices where organization_id = $1`,
      [orgId],
      (r) => r.drafts === 0,
      300,
    ).catch((e: Error) => (log(`finalization incomplete (${e.message}); exporting anyway`), null));
    if (fin) log(`${fin.row.n} invoices finalized in ${fin.seconds.toFixed(1)} s`);
    await billing.close();
    await stopChild(worker);
    worker = null;
    await pg.query('vacuum analyze');

    const [counts] = (
      await pg.query(
        `select (select count(*)::int from usage_events where organization_id = $1) as events,
                (select count(*)::int from invoices where organization_id = $1 and period_start >= $2 and period_start < $3) as invoices,
                (select count(*)::int from journal_entries where organization_id = $1) as entries,
                (select count(*)::int from usage_rollups where organization_id = $1) as rollups`,
        [orgId, from.toISOString(), to.toISOString()],
      )
    ).rows;
    log(`data: ${JSON.stringify(counts)}`);

    // --- the export, in a child process, memory sampled
    const out = join(exportsDir, `bench-${period}.xlsx`);
    log('exporting (npm run cli -- export)…');
    const run = await runExport(env, ['export', '--period', period, '--out', out, '--org', orgId, '--json']);
    if (run.code !== 0) throw new Error(`the export exited with code ${run.code}: ${run.stdout}`);
    const report = JSON.parse(run.stdout.trim().split('\n').pop()!);
    const [timing] = (await pg.query('select extract(epoch from finished_at - started_at)::float as s from exports where id = $1', [report.export_id])).rows;
    const version = (await pg.query('show server_version')).rows[0].server_version as string;
    const size = statSync(out).size;
    const peak = Math.max(run.peakRssMb, run.hwmMb);
    const result = {
      benchmark: 'export',
      at: new Date().toISOString(),
      host: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', memory_gb: Math.round(os.totalmem() / 2 ** 30), node: process.version, postgres: version },
      options: { events: o.events, customers: o.customers, period },
      data: counts,
      export: {
        rows: report.rows,
        sheets: report.sheets,
        file_bytes: size,
        sha256: report.sha256,
        seconds_process: +run.seconds.toFixed(2),
        seconds_export: +Number(timing.s).toFixed(2),
        peak_rss_mb: +peak.toFixed(1),
        peak_rss_sampled_mb: +run.peakRssMb.toFixed(1),
        vm_hwm_mb: +run.hwmMb.toFixed(1),
      },
      targets: { peak_rss_mb: TARGET_RSS_MB, seconds: TARGET_SECONDS, rss_ok: peak < TARGET_RSS_MB, time_ok: run.seconds < TARGET_SECONDS },
    };
    log(
      `export: ${report.rows.toLocaleString('en-US')} rows, ${(size / 1e6).toFixed(1)} MB in ${run.seconds.toFixed(1)} s (process) / ${Number(timing.s).toFixed(1)} s (export); peak RSS ${peak.toFixed(0)} MB (target < ${TARGET_RSS_MB} MB: ${result.targets.rss_ok ? 'met' : 'MISSED'}; < ${TARGET_SECONDS} s: ${result.targets.time_ok ? 'met' : 'MISSED'})`,
    );
    if (!existsSync(RESULTS)) mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'export.json'), `${JSON.stringify(result, null, 2)}\n`);
    const md = join(RESULTS, 'export.md');
    if (!existsSync(md)) {
      writeFileSync(
        md,
        `# Auditor workbook export benchmark (\`npm run bench -- export\`)\n\nTargets: peak RSS of the exporting process < ${TARGET_RSS_MB} MB; the 1,000,000-event workbook in < ${TARGET_SECONDS} s.\n\n| date | host | events | rows written | file | seconds (process / export) | peak RSS | targets |\n|---|---|---|---|---|---|---|---|\n`,
      );
    }
    const line = `| ${result.at.slice(0, 16).replace('T', ' ')} | ${result.host.cpus} cpu, PG ${version.split(' ')[0]}, node ${process.version} | ${o.events.toLocaleString('en-US')} | ${report.rows.toLocaleString('en-US')} | ${(size / 1e6).toFixed(1)} MB | ${run.seconds.toFixed(1)} / ${Number(timing.s).toFixed(1)} | ${peak.toFixed(0)} MB | RSS ${result.targets.rss_ok ? 'met' : 'missed'}, time ${result.targets.time_ok ? 'met' : 'missed'} |`;
    appendFileSync(md, `${line}\n`);
    log(`wrote bench/results/export.json and a line in bench/results/export.md:\n${line}`);
    return result;
  } finally {
    await stopChild(api);
    await stopChild(worker);
    http?.close();
    await pg.end().catch(() => undefined);
    if (!o.keep) {
      await dropDatabase(url).catch((e) => log(`could not drop ${url}: ${e.message}`));
      rmSync(exportsDir, { recursive: true, force: true });
    } else log(`kept ${url} and ${exportsDir}`);
    await clearRedisPrefix(prefix).catch((e) => log(`could not clear ${prefix}: ${e.message}`));
  }
}
