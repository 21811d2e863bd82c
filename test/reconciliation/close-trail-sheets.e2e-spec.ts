// The close trail of the auditor workbook (docs/exports.md): a real month — usage billed in arrears
// (no fee billed in advance, so deferred_revenue has nothing to compare: not_applicable), finalized,
// month-end, a full reconciliation run, a preparer sign-off made stale by a revenue entry and
// superseded after a flux-only run, a reviewer sign-off, a dispute resolved with its evidence, the
// close — exported through ExportsService.run and read back with exceljs: every run and check of the
// month with its population and capture hash, every sign-off with its state (the withdrawn one too),
// the close as GET …/close answers it, N/A (never PASS) for the check that compared nothing, a row
// count for each close sheet in the Summary; and the export wrote no close row.
import { rmSync } from 'node:fs';
import ExcelJS from 'exceljs';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ACCOUNTS, LedgerService } from '@closebook/ledger';
import { ExportsService } from '@closebook/traceability';
import { bearer, startApi, type TestApi } from '../helpers/api';
import { DAY, monthStart, runPeriodEnd, sendAll, sql, startWorker, tenant, type Tenant } from '../invoicing/fixtures';

const ym = (d: Date) => d.toISOString().slice(0, 7);
const CHECKS = ['events_rollups', 'rollups_lines', 'invoices_ledger', 'completeness', 'deferred_revenue', 'flux'];

type Cell = ExcelJS.CellValue;

/** A cell's value as a reader that does not recalculate sees it (a formula shows its cached result). */
function plain(v: Cell): Cell {
  if (v && typeof v === 'object' && 'formula' in v) return (v as ExcelJS.CellFormulaValue).result as Cell;
  if (v && typeof v === 'object' && 'richText' in v) return (v as ExcelJS.CellRichTextValue).richText.map((r) => r.text).join('');
  return v;
}

/** A sheet's data rows as header → value records (row 1 is the header). */
function records(ws: ExcelJS.Worksheet): Record<string, Cell>[] {
  const header = (ws.getRow(1).values as Cell[]).slice(1).map((h) => String(plain(h)));
  const out: Record<string, Cell>[] = [];
  ws.eachRow((row, n) => {
    if (n === 1) return;
    const rec: Record<string, Cell> = {};
    header.forEach((h, i) => (rec[h] = plain(row.getCell(i + 1).value)));
    // Column B, whatever its header: the Summary's item.
    rec.__b = plain(row.getCell(2).value);
    out.push(rec);
  });
  return out;
}

const text = (v: Cell) => (v === null || v === undefined ? null : v instanceof Date ? v.toISOString() : String(v));
const num = (v: Cell) => (v === null || v === undefined || v === '' ? null : Number(v));
const ms = (v: Cell) => (v instanceof Date ? v.getTime() : v === null || v === undefined ? null : new Date(String(v)).getTime());

describe('auditor workbook: the close trail', () => {
  let api: TestApi;
  let w: Awaited<ReturnType<typeof startWorker>>;
  const em = () => api.orm.em.fork() as EntityManager;
  const files: string[] = [];

  beforeAll(async () => {
    api = await startApi();
    w = await startWorker();
  });
  afterAll(async () => {
    for (const f of files) rmSync(f, { force: true });
    await w.close();
    await api.close();
  });

  /** The organization's close rows, table by table: what an export must never change. */
  async function closeDigest(orgId: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const table of ['close_sign_offs', 'period_closes', 'reconciliation_runs', 'reconciliation_results', 'exceptions', 'accounting_periods', 'close_settings']) {
      const [d] = await sql<{ n: string; d: string }>(
        api,
        `select count(*)::text as n, md5(coalesce(string_agg(x::text, '|' order by x::text), '')) as d from "${table}" x where organization_id = ?`,
        [orgId],
      );
      out[table] = `${d.n}:${d.d}`;
    }
    return out;
  }

  /** An export of the month through ExportsService.run (as the job runs it), opened with exceljs. */
  async function exportWorkbook(t: Tenant, period: string) {
    const exports = api.app.get(ExportsService);
    const exp = await exports.create(em(), t.orgId, { kind: 'audit_workbook', period }, { actor: 'test', keyId: null });
    const done = await exports.run(em(), exp.id);
    expect(done.status).toBe('done');
    files.push(done.filePath!);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(done.filePath!);
    return { wb, done };
  }

  async function runChecks(t: Tenant, period: string, key: string, checks?: string[]) {
    const started = await api.http.post(`/v1/periods/${period}/reconciliation-runs`).set(bearer(key)).send(checks ? { checks } : {}).expect(202);
    for (const deadline = Date.now() + 90_000; ; ) {
      const run = (await t.get(`/v1/periods/${period}/reconciliation-runs/${started.body.id}`).expect(200)).body;
      if (['passed', 'failed', 'error'].includes(run.status)) return run as { id: string; status: string };
      if (Date.now() > deadline) throw new Error(`run did not finish: ${JSON.stringify(run)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('lists every run and check, every sign-off with its state, the close and N/A checks; counts every close sheet; writes nothing', async () => {
    const m1 = monthStart(-1);
    const P = ym(m1);
    const t = await tenant(api, 'close trail workbook');
    // Usage only, billed in arrears: nothing is billed in advance, so nothing is deferred.
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('usage', [{ product_key: 'api_calls', price: { model: 'per_unit', unit_amount: '0.01' } }]);
    await t.subscribe('acme', 'usage', { started_at: m1 });
    await sendAll(t, t.calls('acme', 'api.call', 1_500, new Date(m1.getTime() + 5 * DAY)));
    await runPeriodEnd(api, w, t.orgId);
    const drafts = (await t.invoices('&status=draft')).sort((a, b) => a.period_start.localeCompare(b.period_start) || (a.kind === 'opening' ? -1 : 1));
    for (const inv of drafts) await t.post(`/v1/invoices/${inv.id}/finalize`, {}).expect(201);

    const [preparer, reviewer] = [await t.key('finance'), await t.key('finance')];
    await api.http.post(`/v1/periods/${P}/month-end`).set(bearer(preparer)).send({}).expect(200);
    const run1 = await runChecks(t, P, preparer);
    expect(run1.status).toBe('passed');
    const run1Checks = Object.fromEntries((await t.get(`/v1/periods/${P}/reconciliation-runs/${run1.id}`).expect(200)).body.checks.map((c: { check: string; status: string }) => [c.check, c.status]));
    expect(run1Checks).toEqual({ ...Object.fromEntries(CHECKS.map((c) => [c, 'passed'])), deferred_revenue: 'not_applicable' });

    // The preparer signs; then a revenue entry dated in the month changes what flux reads: the sign-off is stale.
    const first = (await api.http.post(`/v1/periods/${P}/sign-offs`).set(bearer(preparer)).send({ step: 'preparer', note: 'first pass' }).expect(201)).body;
    await api.app.get(LedgerService).post(em(), {
      organizationId: t.orgId,
      currency: 'USD',
      date: new Date(m1.getTime() + 20 * DAY),
      key: `manual:services:${t.orgId}`,
      source: { type: 'manual', id: t.orgId },
      description: 'manual services revenue',
      lines: [
        { account_code: ACCOUNTS.CASH, debit: 100n },
        { account_code: ACCOUNTS.REVENUE_SERVICES, credit: 100n },
      ],
    });
    const stale = (await t.get(`/v1/periods/${P}/close`).expect(200)).body;
    expect(stale.sign_offs.given).toEqual([expect.objectContaining({ id: first.id, state: 'stale', stale_checks: ['flux'] })]);
    {
      // The open month's workbook says the same as its status: the sign-off stale over flux, the month open with its blockers.
      const before = await closeDigest(t.orgId);
      const { wb } = await exportWorkbook(t, P);
      expect(await closeDigest(t.orgId)).toEqual(before);
      const trail = records(wb.getWorksheet('Close trail')!);
      expect(trail.map((r) => [r.kind, r.id ?? null, r.state, r.stale_checks ?? null])).toEqual([
        ['sign_off', first.id, 'stale', 'flux'],
        ['status', null, 'open', null],
      ]);
      expect(String(trail[1].blockers).split(', ').sort()).toEqual(stale.blockers.map((b: { code: string }) => b.code).sort());
      const summary = records(wb.getWorksheet('Summary')!);
      const signed = summary.find((r) => r.__b === 'Sign-offs valid')!;
      expect([signed.status, num(plain(signed.expected)), num(plain(signed.actual))]).toEqual(['FAIL', 2, 0]);
      expect(String(summary.find((r) => r.__b === 'Month state')!.detail)).toMatch(/^open: .*sign_off_stale/);
      expect(summary.find((r) => r.__b === 'Check deferred_revenue')!.status).toBe('N/A');
    }
    // Flux alone runs again; the preparer signs again (superseding the stale sign-off), the reviewer signs.
    const run2 = await runChecks(t, P, preparer, ['flux']);
    expect(run2.status).toBe('passed');
    await api.http.post(`/v1/periods/${P}/sign-offs`).set(bearer(preparer)).send({ step: 'preparer', note: 'after the services entry' }).expect(201);
    await api.http.post(`/v1/periods/${P}/sign-offs`).set(bearer(reviewer)).send({ step: 'reviewer' }).expect(201);

    // A dispute on the month's invoice, resolved with its queue's evidence (a note): an exception of the month.
    const [periodInvoice] = (await t.invoices('&kind=period')).filter((i) => i.period_start === m1.toISOString());
    const line = (await t.invoice(periodInvoice.id)).lines[0];
    const dispute = (await t.post('/v1/disputes', { invoice_id: periodInvoice.id, invoice_line_id: line.id, reason: 'usage looks high' }).expect(201)).body;
    await t.post(`/v1/exceptions/${dispute.id}/resolve`, { kind: 'accepted', note: 'usage confirmed from the customer logs' }).expect(201);

    const closedBody = (await api.http.post(`/v1/periods/${P}/close`).set(bearer(reviewer)).send({}).expect(200)).body;
    expect(closedBody).toMatchObject({ state: 'closed', transitioned: true });
    const status = (await t.get(`/v1/periods/${P}/close`).expect(200)).body as { closed: { at: string; by: string } };
    expect(status.closed).toEqual(closedBody.closed);

    // --- The export (the API process loads CloseModule: its close sheets are registered).
    const before = await closeDigest(t.orgId);
    const { wb, done } = await exportWorkbook(t, P);
    expect(await closeDigest(t.orgId)).toEqual(before);
    const names = wb.worksheets.map((s) => s.name);
    expect(names.indexOf('Close runs')).toBe(names.indexOf('Reconciliation results') + 1);
    expect(names.indexOf('Close trail')).toBe(names.indexOf('Close runs') + 1);
    expect(names.indexOf('Exceptions')).toBe(names.indexOf('Close trail') + 1);

    // --- Close runs: every run of the month, every requested check, as the database holds it.
    const runs = await sql<{
      id: string;
      status: string;
      started_by: string;
      checks: string[];
      capture: { checks: Record<string, { status: string; items?: number; failed?: number; warned?: number; population?: { count: number; unit: string; reason?: string } }> };
      capture_hash: string;
      inputs_fingerprint: Record<string, string>;
      finished_at: Date;
    }>(api, `select id, status, started_by, checks, capture, capture_hash, inputs_fingerprint, finished_at from reconciliation_runs where organization_id = ? and period = ? order by created_at, id`, [t.orgId, P]);
    expect(runs.map((r) => r.id)).toEqual([run1.id, run2.id]);
    const closeRuns = records(wb.getWorksheet('Close runs')!);
    const expectedRuns = runs.flatMap((r) =>
      r.checks.map((check) => {
        const c = r.capture.checks[check];
        return {
          run_id: r.id,
          run_status: r.status,
          started_by: r.started_by,
          finished_at: new Date(r.finished_at).getTime(),
          capture_hash: r.capture_hash,
          check,
          check_status: c.status,
          population_count: c.population?.count ?? null,
          population_unit: c.population?.unit ?? null,
          population_reason: c.population?.reason ?? null,
          items: c.items ?? null,
          failed: c.failed ?? null,
          warned: c.warned ?? null,
          fingerprint: r.inputs_fingerprint[check],
          // The run the close status uses per check: run 2 for flux, run 1 for every other check.
          current: (check === 'flux') === (r.id === run2.id) ? 'yes' : 'no',
        };
      }),
    );
    expect(expectedRuns).toHaveLength(7);
    expect(
      closeRuns.map((r) => ({
        run_id: text(r.run_id),
        run_status: text(r.run_status),
        started_by: text(r.started_by),
        finished_at: ms(r.finished_at),
        capture_hash: text(r.capture_hash),
        check: text(r.check),
        check_status: text(r.check_status),
        population_count: num(r.population_count),
        population_unit: text(r.population_unit),
        population_reason: text(r.population_reason),
        items: num(r.items),
        failed: num(r.failed),
        warned: num(r.warned),
        fingerprint: text(r.fingerprint),
        current: text(r.current),
      })),
    ).toEqual(expectedRuns);
    const na = closeRuns.find((r) => r.run_id === run1.id && r.check === 'deferred_revenue')!;
    expect(na).toMatchObject({ check_status: 'not_applicable', population_count: 0 });
    expect(String(na.population_reason)).toMatch(/deferred/);
    // The current runs per check agree with the close status' own reading.
    const closedChecks = closedBody.checks as { check: string; run_id: string; status: string }[];
    expect(Object.fromEntries(closeRuns.filter((r) => r.current === 'yes').map((r) => [r.check, r.run_id]))).toEqual(Object.fromEntries(closedChecks.map((c) => [c.check, c.run_id])));

    // --- Reconciliation results: the results of those current runs, deferred_revenue's included.
    const results = records(wb.getWorksheet('Reconciliation results')!);
    const [dbResults] = await sql<{ n: string }>(
      api,
      `select count(*)::text as n from reconciliation_results where organization_id = ? and ((run_id = ? and check_key <> 'flux') or (run_id = ? and check_key = 'flux'))`,
      [t.orgId, run1.id, run2.id],
    );
    expect(results).toHaveLength(Number(dbResults.n));
    expect(new Set(results.map((r) => `${r.check}:${r.run_id}`))).toEqual(
      new Set((await sql<{ k: string }>(api, `select distinct check_key || ':' || run_id as k from reconciliation_results where organization_id = ? and ((run_id = ? and check_key <> 'flux') or (run_id = ? and check_key = 'flux'))`, [t.orgId, run1.id, run2.id])).map((r) => r.k)),
    );

    // --- Exceptions: the dispute, resolved with its evidence.
    const exceptions = records(wb.getWorksheet('Exceptions')!);
    expect(exceptions).toEqual([expect.objectContaining({ id: dispute.id, type: 'dispute', status: 'resolved', resolution: 'accepted', resolution_note: 'usage confirmed from the customer logs' })]);

    // --- Close trail: three sign-offs (the stale one withdrawn), the close as GET …/close says, the month's state.
    const signOffs = await sql<{ id: string; step: string; signer: string; created_at: Date; withdrawn_at: Date | null; withdrawn_reason: string | null; runs: Record<string, string> }>(
      api,
      `select id, step, signer, created_at, withdrawn_at, withdrawn_reason, runs from close_sign_offs where organization_id = ? and period = ? order by created_at, id`,
      [t.orgId, P],
    );
    expect(signOffs).toHaveLength(3);
    const trail = records(wb.getWorksheet('Close trail')!);
    expect(trail.map((r) => r.kind)).toEqual(['sign_off', 'sign_off', 'sign_off', 'close', 'status']);
    expect(
      trail.slice(0, 3).map((r) => ({
        id: r.id,
        step: r.step,
        signer: r.signer,
        signed_at: ms(r.signed_at),
        withdrawn_at: ms(r.withdrawn_at),
        withdrawn_reason: text(r.withdrawn_reason),
        state: r.state,
        runs: JSON.parse(String(r.runs)),
      })),
    ).toEqual(
      signOffs.map((s, i) => ({
        id: s.id,
        step: s.step,
        signer: s.signer,
        signed_at: new Date(s.created_at).getTime(),
        withdrawn_at: s.withdrawn_at ? new Date(s.withdrawn_at).getTime() : null,
        withdrawn_reason: s.withdrawn_reason,
        state: ['withdrawn', 'valid', 'valid'][i],
        runs: s.runs,
      })),
    );
    expect(trail[0]).toMatchObject({ id: first.id, step: 'preparer' });
    expect(String(trail[0].withdrawn_reason)).toMatch(/superseded.*flux/);
    // The sign-offs given after the flux run signed run 2 for flux and run 1 for the other checks.
    expect(JSON.parse(String(trail[1].runs))).toEqual({ ...Object.fromEntries(CHECKS.map((c) => [c, run1.id])), flux: run2.id });
    const [periodClose] = await sql<{ id: string }>(api, `select id from period_closes where organization_id = ? and period = ?`, [t.orgId, P]);
    expect(trail[3]).toMatchObject({ id: periodClose.id, state: 'closed', closed_by: status.closed.by });
    expect(ms(trail[3].closed_at)).toBe(new Date(status.closed.at).getTime());
    expect(JSON.parse(String(trail[3].details)).sign_offs.map((s: { id: string }) => s.id)).toEqual([signOffs[1].id, signOffs[2].id]);
    expect(trail[4]).toMatchObject({ state: 'closed', blockers: 'period_closed', closed_by: status.closed.by });

    // --- Summary: the Close lines (N/A for the check that compared nothing, never PASS) and a row count per sheet.
    const summary = records(wb.getWorksheet('Summary')!);
    const item = (label: string) => {
      const r = summary.find((x) => x.__b === label);
      if (!r) throw new Error(`no Summary line "${label}": ${summary.map((x) => x.__b).join(' | ')}`);
      return r;
    };
    for (const check of CHECKS) {
      const l = item(`Check ${check}`);
      expect({ check, status: l.status, section: l.section }).toEqual({ check, status: check === 'deferred_revenue' ? 'N/A' : 'PASS', section: 'Close' });
      const runId = check === 'flux' ? run2.id : run1.id;
      const c = runs.find((r) => r.id === runId)!.capture.checks[check];
      expect({ check, expected: num(plain(l.expected)), actual: num(plain(l.actual)) }).toEqual({ check, expected: c.items ?? 0, actual: (c.items ?? 0) - (c.failed ?? 0) });
      expect(String(l.detail)).toContain(runId);
    }
    expect(String(item('Check deferred_revenue').detail)).toContain(String(na.population_reason));
    expect(item('Exceptions still open')).toMatchObject({ section: 'Close', status: 'PASS' });
    expect(item('Month state')).toMatchObject({ section: 'Close', status: 'INFO' });
    expect(String(item('Month state').detail)).toContain(`closed by ${status.closed.by}`);
    expect(item('Sign-offs valid')).toMatchObject({ section: 'Close', status: 'PASS' });
    expect([num(plain(item('Sign-offs valid').expected)), num(plain(item('Sign-offs valid').actual))]).toEqual([2, 2]);

    const sheetRows = summary.filter((r) => r.section === 'Sheet');
    for (const name of ['Reconciliation results', 'Exceptions', 'Close runs', 'Close trail']) {
      const r = sheetRows.find((x) => x.__b === name);
      expect({ name, counted: r ? num(plain(r.actual)) : 'no Sheet row' }).toEqual({ name, counted: records(wb.getWorksheet(name)!).length });
    }
    // And the export's own record agrees.
    const counted = Object.fromEntries((done.sheets ?? []).map((s) => [s.name, s.rows]));
    expect(counted).toMatchObject({ 'Close runs': 7, 'Close trail': 5, Exceptions: 1 });
  }, 240_000);
});
