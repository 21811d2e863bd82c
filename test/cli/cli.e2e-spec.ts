// The operator CLI as shipped: every command's happy path through the **compiled** CLI
// (`node scripts/cli.js …`, what `npm run cli -- …` runs), each a child process on this run's own
// database and queue prefix, so a command that cannot start (a provider built without its
// dependencies, a stale build) fails here: org create, key create, migrate, migration:create, the
// month-end close of a month with data (status, run, two sign-offs, close), explain, export, and
// the demo (`npm run demo`'s script) at its smallest size on a throwaway database of its own.
//
// dist/ must be as new as the sources: `npm test` compiles first (pretest); run alone
// (`npx jest test/cli`), this suite compiles (`npm run build`) when any source is newer than its
// output, and fails saying so when that build fails.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { NestFactory } from '@nestjs/core';
import { Client } from 'pg';
import ExcelJS from 'exceljs';
import { dropDatabase } from '@closebook/platform';
import { CliModule } from '../../apps/cli/src/cli.module';
import { ExplainCliModule } from '../../apps/cli/src/commands/explain.command';
import { bearer, startApi, type TestApi } from '../helpers/api';
import { monthStart, runPeriodEnd, sendAll, startWorker, tenant, type Tenant } from '../invoicing/fixtures';

const root = join(__dirname, '..', '..');
const ym = (d: Date) => d.toISOString().slice(0, 7);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Sources (what `npm run build` compiles for the CLI) whose compiled .js in dist/ is missing or older. */
function staleOutputs(): string[] {
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') && !e.name.endsWith('.d.ts')) {
        const rel = relative(root, full);
        const out = join(root, 'dist', rel.replace(/\.ts$/, '.js'));
        if (!existsSync(out) || statSync(out).mtimeMs < statSync(full).mtimeMs) stale.push(rel);
      }
    }
  };
  for (const dir of ['apps', 'libs', 'migrations']) walk(join(root, dir));
  return stale;
}

/** Compiles dist/ when it is older than the sources; a failed build fails the suite, naming why. */
function ensureBuilt(): void {
  const stale = staleOutputs();
  if (stale.length) {
    const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, encoding: 'utf8', timeout: 300_000 });
    if (tsc.status !== 0) {
      throw new Error(
        `dist/ is older than the sources (${stale.length} file(s), e.g. ${stale.slice(0, 3).join(', ')}) and \`npm run build\` failed ` +
          `(exit ${tsc.status ?? tsc.signal}), so the compiled CLI cannot be tested:\n${tsc.stdout}${tsc.stderr}`,
      );
    }
  }
  if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('dist/apps/cli/src/main.js is missing after `npm run build`');
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

describe('the compiled CLI', () => {
  let api: TestApi;
  let w: Awaited<ReturnType<typeof startWorker>>;
  let tmp: string;
  let exportsDir: string;

  /** `node scripts/<script> …args` on this run's database and queue prefix; killed (with what it started) after `timeoutMs`. */
  function node(script: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [join(root, 'scripts', script), ...args], {
        cwd: opts.cwd ?? root,
        // DATABASE_URL and QUEUE_PREFIX are this run's (test/setup-env.ts); export files go to a directory of this suite's own.
        env: { ...process.env, EXPORTS_DIR: exportsDir, NODE_ENV: 'test', ...opts.env },
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group: a timeout kills it and whatever it started (the demo's worker).
        detached: true,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, opts.timeoutMs ?? 60_000);
      child.on('error', fail);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        done({ code, signal, stdout, stderr });
      });
    });
  }

  /** A CLI command that must succeed (exit 0); the failure names the command and shows what it printed. */
  async function cli(args: string[], opts: { cwd?: string } = {}): Promise<Run> {
    const r = await node('cli.js', args, opts);
    if (r.code !== 0) throw new Error(`\`cli ${args.join(' ')}\` exited with ${r.code ?? r.signal}\n--- stderr\n${r.stderr}\n--- stdout\n${r.stdout}`);
    return r;
  }

  /** A CLI command with `--json`: exactly one JSON line on standard output (README, "Running it"). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed document, read field by field
  async function cliJson<T = any>(args: string[]): Promise<T> {
    const r = await cli([...args, '--json']);
    const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
    if (lines.length !== 1) throw new Error(`\`cli ${args.join(' ')} --json\` printed ${lines.length} lines, not one JSON line:\n${r.stdout}`);
    return JSON.parse(lines[0]) as T;
  }

  const codes = (s: { blockers: { code: string }[] }) => s.blockers.map((b) => b.code).sort();

  beforeAll(async () => {
    // Never a developer's database: the run's own, made by test/global-setup.ts.
    if (!process.env.CLOSEBOOK_TEST_RUN) throw new Error('run with jest.config.js: its global setup makes the database of this run');
    ensureBuilt();
    tmp = mkdtempSync(join(tmpdir(), 'closebook-cli-'));
    exportsDir = join(tmp, 'exports');
    api = await startApi();
    w = await startWorker();
  }, 300_000);

  afterAll(async () => {
    await w?.close();
    await api?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('builds every command with its dependencies (the module as swc compiles it for jest)', async () => {
    // The compiled CLI below runs what tsc emitted; this is the same wiring with swc's decorator metadata.
    const ctx = await NestFactory.createApplicationContext(CliModule, { logger: false });
    try {
      const providers = [...(Reflect.getMetadata('providers', CliModule) as Function[]), ...(Reflect.getMetadata('providers', ExplainCliModule) as Function[])];
      const missing = providers.flatMap((cls) => {
        const unset = Object.entries(ctx.get(cls as new () => object)).filter(([, v]) => v === undefined);
        return unset.map(([k]) => `${cls.name}.${k}`);
      });
      expect(missing).toEqual([]);
    } finally {
      await ctx.close();
    }
  });

  // The month the close commands work: M-2 of an organization the CLI creates, with a subscription,
  // usage over its allowance and finalized invoices (as test/reconciliation/close.e2e-spec.ts prepares one).
  const m2 = monthStart(-2);
  const P = ym(m2);
  let org: { organization_id: string; api_key: string };
  let t: Tenant;
  let invoiceId: string;
  let lineId: string;

  it('org create: a new organization and its admin API key', async () => {
    org = await cliJson(['org', 'create', '--name', 'CLI e2e']);
    expect(org.organization_id).toMatch(UUID);
    expect(org.api_key).toEqual(expect.any(String));
    // The key works over HTTP: the tenant below is built with it.
    t = await tenant({ ...api, newOrg: async () => ({ orgId: org.organization_id, adminKey: org.api_key }) }, 'CLI e2e');
    expect((await t.get('/v1/api-keys').expect(200)).body.data.length).toBeGreaterThanOrEqual(1);
  });

  it('key create: a finance key of that organization', async () => {
    const key = await cliJson(['key', 'create', '--org', org.organization_id, '--role', 'finance']);
    expect(key).toMatchObject({ organization_id: org.organization_id, role: 'finance', key_id: expect.stringMatching(UUID), api_key: expect.any(String) });
    expect(key.api_key).not.toBe(org.api_key);
    // It authenticates as finance of that organization: it reads the close status of a month.
    const status = await api.http.get(`/v1/periods/${P}/close`).set(bearer(key.api_key)).expect(200);
    expect(status.body.period).toBe(P);
  });

  it('migrate: on the migrated database, nothing to apply', async () => {
    const r = await cli(['migrate']);
    expect(r.stdout.trim()).toBe('Database is up to date.');
  });

  it('migration:create: compares the entities with the database (writing, if anything, in its working directory)', async () => {
    const cwd = join(tmp, 'migration-create');
    rmSync(cwd, { recursive: true, force: true });
    mkdirSync(cwd, { recursive: true });
    const r = await cli(['migration:create', '--name', 'cli_e2e'], { cwd });
    expect(r.stdout).toMatch(/No changes: the entities match the database\.|Wrote migrations\//);
  });

  it('close status, run, sign-off (two people) and close: a month with data closes', async () => {
    await t.product({ key: 'pro_fee', name: 'Pro plan', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('pro', [
      { product_key: 'pro_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.01' } },
    ]);
    const s = await t.subscribe('acme', 'pro', { started_at: m2, tax_rate: '0.1' });
    await sendAll(t, t.calls('acme', 'api.call', 3_000, new Date(m2.getTime() + 5 * 86_400_000)));
    await runPeriodEnd(api, w, org.organization_id);
    // Oldest first (an invoice cannot finalize before an earlier period's): opening, then each period.
    const drafts = (await t.invoices('&status=draft')).sort((a, b) => a.period_start.localeCompare(b.period_start) || (a.kind === 'opening' ? -1 : 1));
    for (const inv of drafts) await t.post(`/v1/invoices/${inv.id}/finalize`, {}).expect(201);
    const invoice = await t.periodInvoice(s.subscriptionId, m2);
    const overage = invoice.lines.find((l) => l.type === 'usage_overage')!;
    expect(overage.amount.amount).toBe('20.00');
    [invoiceId, lineId] = [invoice.id, overage.id];

    const at = ['--period', P, '--org', org.organization_id];
    const before = await cliJson(['close', 'status', ...at]);
    expect(before).toMatchObject({ period: P, closable: false, ledger_status: 'open' });
    expect(codes(before)).toEqual([...Array(6).fill('check_not_run'), 'sign_off_missing', 'sign_off_missing']);

    const run = await cliJson(['close', 'run', ...at]);
    expect(run).toMatchObject({ run_id: expect.stringMatching(UUID), run_status: 'passed', capture_hash: expect.stringMatching(/^[0-9a-f]{64}$/), month_end: { period: P } });
    expect(run.status.checks.map((c: { check: string; status: string; fresh: boolean }) => [c.check, c.status, c.fresh])).toEqual(
      ['events_rollups', 'rollups_lines', 'invoices_ledger', 'completeness', 'deferred_revenue', 'flux'].map((c) => [c, 'passed', true]),
    );
    expect(run.status.closable).toBe(false);
    expect(codes(run.status)).toEqual(['sign_off_missing', 'sign_off_missing']);

    const preparer = await cliJson(['close', 'sign-off', ...at, '--step', 'preparer', '--as', 'Ada']);
    expect(preparer).toMatchObject({ id: expect.stringMatching(UUID), period: P, step: 'preparer', signer: 'cli:Ada' });
    const reviewer = await cliJson(['close', 'sign-off', ...at, '--step', 'reviewer', '--as', 'Bo']);
    expect(reviewer).toMatchObject({ period: P, step: 'reviewer', signer: 'cli:Bo' });
    const ready = await cliJson(['close', 'status', ...at]);
    expect(ready).toMatchObject({ closable: true, blockers: [] });

    const closed = await cliJson(['close', 'close', ...at, '--as', 'Cy']);
    expect(closed).toMatchObject({ period: P, transitioned: true, closed_at: expect.any(String), closed_by: 'cli:Cy' });
    const after = await cliJson(['close', 'status', ...at]);
    expect(after).toMatchObject({ period: P, state: 'closed', ledger_status: 'closed', closable: false, closed: { by: 'cli:Cy' } });
    expect(after.sign_offs.given.map((g: { signer: string; state: string }) => [g.signer, g.state])).toEqual([
      ['cli:Ada', 'valid'],
      ['cli:Bo', 'valid'],
    ]);
    expect(codes(after)).toEqual(['period_closed']);
    expect((await t.get(`/v1/ledger/periods/${P}`).expect(200)).body.status).toBe('closed');
    // The report for a person (no --json) reads the same status.
    const text = await cli(['close', 'status', ...at]);
    expect(text.stdout.split('\n')[0]).toMatch(new RegExp(`^${P}: closed by cli:Cy at .* \\(ledger closed\\), `));
    expect(text.stdout).toContain('BLOCKER period_closed');
    // Closing again changes nothing.
    expect(await cliJson(['close', 'close', ...at])).toMatchObject({ period: P, transitioned: false });
  }, 120_000);

  it('explain: what produced the overage charge (the organization found from the invoice)', async () => {
    const doc = await cliJson(['explain', '--invoice', invoiceId, '--line', lineId]);
    expect(doc.invoice.id).toBe(invoiceId);
    expect(doc.line).toMatchObject({ id: lineId, type: 'usage_overage', amount: { amount: '20.00', currency: 'USD' } });
    expect(doc.replay.matches_stored).toBe(true);
    expect(doc.rollups.length).toBeGreaterThanOrEqual(1);
    expect(Number(doc.events.total)).toBe(3_000);
    expect(doc.events.data).toHaveLength(10);
    // And as a report for a person.
    const text = await cli(['explain', '--invoice', invoiceId, '--line', lineId]);
    expect(text.stdout).toContain('replay        matches the stored amount');
  });

  it('export: the auditor workbook of the closed month, written to the file named', async () => {
    const out = join(tmp, 'workbook.xlsx');
    const res = await cliJson(['export', '--period', P, '--org', org.organization_id, '--out', out]);
    expect(res).toMatchObject({ export_id: expect.stringMatching(UUID), file: resolve(out), rows: expect.any(Number) });
    expect(res.rows).toBeGreaterThan(0);
    const bytes = readFileSync(out);
    expect(bytes.length).toBe(res.size);
    expect(bytes.subarray(0, 4).toString('binary')).toBe('PK\x03\x04'); // an .xlsx is a zip
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(res.sha256);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(bytes as unknown as ArrayBuffer);
    expect(wb.getWorksheet('Summary')).toBeDefined();
    expect(res.sheets.map((s: { name: string }) => s.name)).toEqual(wb.worksheets.map((s) => s.name));
  });

  it('demo (npm run demo): the smallest run, on a throwaway database, closes both past months', async () => {
    // scripts/demo.js recreates DEMO_DATABASE_URL (default closebook_demo, a developer's): here one of this run's own.
    const url = new URL(process.env.DATABASE_URL!);
    url.pathname = `${url.pathname}_demo_w${process.env.JEST_WORKER_ID ?? '0'}`;
    const demoDb = url.toString();
    const name = url.pathname.slice(1);
    try {
      const r = await node('demo.js', ['--customers', '10', '--events', '5'], {
        env: { DEMO_DATABASE_URL: demoDb, DEMO_QUEUE_PREFIX: `${process.env.QUEUE_PREFIX}_demo`, LOG_LEVEL: 'warn' },
        timeoutMs: 240_000,
      });
      if (r.code !== 0) throw new Error(`the demo exited with ${r.code ?? r.signal}\n--- stderr\n${r.stderr}\n--- stdout\n${r.stdout}`);
      expect(r.stdout).toContain(`[demo] database ${name} (recreated)`);
      const [p1, p2] = [ym(monthStart(-2)), ym(monthStart(-1))];
      expect(r.stdout).toContain(`close ${p1}: CLOSED`);
      expect(r.stdout).toContain(`close ${p2}: CLOSED`);
      expect(r.stdout).toMatch(/\nDone in [\d.]+ s\./);
      const db = new Client({ connectionString: demoDb });
      await db.connect();
      try {
        const { rows } = await db.query(`select period, status from accounting_periods where period in ($1, $2) order by period`, [p1, p2]);
        expect(rows).toEqual([
          { period: p1, status: 'closed' },
          { period: p2, status: 'closed' },
        ]);
        const { rows: exp } = await db.query(`select status, file_path from exports`);
        expect(exp).toEqual([{ status: 'done', file_path: expect.stringContaining(exportsDir) }]);
        expect(statSync(exp[0].file_path).size).toBeGreaterThan(0);
      } finally {
        await db.end();
      }
    } finally {
      if (process.env.KEEP_TEST_DB !== '1') await dropDatabase(demoDb);
    }
  }, 300_000);
});
