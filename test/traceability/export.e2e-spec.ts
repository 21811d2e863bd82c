// The auditor workbook (SPEC §7, docs/exports.md): a small but real month — catalog, customers,
// subscriptions, events, rollups, rating, finalization and ledger postings — exported over HTTP by
// the worker's job, downloaded, opened with exceljs and checked: the Summary ties out against the
// database, every invoice line links to an existing invoice and rollup, headers are frozen and
// filtered; the usage events continue on further sheets past an (injected) row limit; and a real
// spreadsheet application (LibreOffice, when installed) opens the file.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import ExcelJS from 'exceljs';
import type { EntityManager } from '@mikro-orm/postgresql';
import { LedgerService } from '@closebook/ledger';
import { ExportsService } from '@closebook/traceability';
import { bearer, startApi, type TestApi } from '../helpers/api';
import { cell, convertToCsv, findOffice, isError, recalculate, sheet } from '../helpers/libreoffice';
import { DAY, monthStart, rollUp, runPeriodEnd, sendAll, sql, startWorker, tenant, uid, type Tenant } from '../invoicing/fixtures';

const lastMonth = monthStart(-1);
const period = lastMonth.toISOString().slice(0, 7);
const inLastMonth = (day: number) => new Date(lastMonth.getTime() + (day - 1) * DAY + 3_600_000);
const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

const SHEETS = [
  'Summary',
  'Invoices',
  'Invoice lines',
  'Rollups',
  'Usage events',
  'Ledger entries',
  'Trial balance',
  'AR roll-forward',
  'Deferred revenue roll-fwd',
  'Unbilled roll-forward',
  'Credit notes',
  'Credit note lines',
  'Payments',
  'Reconciliation results',
  'Close runs',
  'Close trail',
  'Exceptions',
  'Audit log',
];

/** supertest: collect a binary body into a Buffer. */
function binary(res: NodeJS.ReadableStream, done: (err: Error | null, body: unknown) => void) {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}

/** A sheet as header → value records (row 1 is the header). */
function records(ws: ExcelJS.Worksheet): Record<string, ExcelJS.CellValue>[] {
  const header = (ws.getRow(1).values as ExcelJS.CellValue[]).slice(1).map(String);
  const out: Record<string, ExcelJS.CellValue>[] = [];
  ws.eachRow((row, n) => {
    if (n === 1) return;
    const rec: Record<string, ExcelJS.CellValue> = {};
    header.forEach((h, i) => {
      // A formula cell reads as its cached result (what Closebook computed).
      const v = row.getCell(i + 1).value;
      rec[h] = v && typeof v === 'object' && 'formula' in v ? ((v as ExcelJS.CellFormulaValue).result as ExcelJS.CellValue) : v;
    });
    out.push(rec);
  });
  return out;
}

describe('auditor workbook export', () => {
  let api: TestApi;
  let w: Awaited<ReturnType<typeof startWorker>>;
  let t: Tenant;
  let auditorKey: string;
  let workbookBuffer: Buffer;
  const files: string[] = [];
  const em = () => api.orm.em.fork() as EntityManager;

  beforeAll(async () => {
    api = await startApi();
    w = await startWorker();
    t = await tenant(api, 'Workbook');
    await t.product({ key: 'starter_fee', name: 'Starter plan', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('starter', [
      { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    await t.subscribe('acme', 'starter', { started_at: lastMonth, tax_rate: '0.2' });
    await t.subscribe('beta', 'starter', { started_at: lastMonth });
    await t.customer('nosub'); // events of a customer with no subscription: stored, never billed
    await sendAll(t, [
      ...t.calls('acme', 'api.call', 2_400, inLastMonth(3)),
      ...t.calls('beta', 'api.call', 300, inLastMonth(9)),
      ...t.calls('beta', 'page.view', 40, inLastMonth(10)),
      ...t.calls('nosub', 'api.call', 7, inLastMonth(11)),
      // A control character XML refuses must not break the file.
      { event_id: uid('odd'), customer_id: 'beta', event_name: 'bell\u0007event', timestamp: inLastMonth(12).toISOString(), properties: { n: 1 } },
    ]);
    await rollUp(api, t.orgId);
    await runPeriodEnd(api, w, t.orgId);
    // Finalize every invoice, earliest period first; post any the ledger hook did not.
    const invoices = (await t.invoices()).sort((a, b) => a.period_start.localeCompare(b.period_start));
    for (const inv of invoices) {
      const r = await t.post(`/v1/invoices/${inv.id}/finalize`, {});
      if (r.status !== 200 && r.status !== 201) throw new Error(`finalize: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
    }
    const unposted = await sql<{ id: string; customer_id: string; total: string; subtotal: string; tax_amount: string; currency: string }>(
      api,
      `select i.id, i.customer_id, i.total::text, i.subtotal::text, i.tax_amount::text, i.currency from invoices i
       where i.organization_id = ? and i.status = 'finalized' and i.total <> 0
         and not exists (select 1 from journal_entries je where je.source_type = 'invoice' and je.source_id = i.id::text)`,
      [t.orgId],
    );
    const ledger = api.app.get(LedgerService);
    for (const i of unposted) {
      const minor = (v: string) => BigInt(Math.round(Number(v) * 100));
      await em().transactional((tx) =>
        ledger.post(tx, {
          organizationId: t.orgId,
          currency: i.currency,
          date: inLastMonth(28),
          key: `test-invoice:${i.id}`,
          source: { type: 'invoice', id: i.id },
          description: 'invoice (posted by the test)',
          lines: [
            { account_code: '1100', party_id: i.customer_id, debit: minor(i.total) },
            { account_code: '4000', credit: minor(i.subtotal) },
            ...(minor(i.tax_amount) > 0n ? [{ account_code: '2300', credit: minor(i.tax_amount) }] : []),
          ],
        }),
      );
    }
    // A payment received on the month's last day: the Payments sheet and its tie-out.
    const [paid] = await sql<{ id: string; total: string }>(api, `select id, total::text from invoices where organization_id = ? and kind = 'period' and total > 0 order by total desc limit 1`, [t.orgId]);
    await t.post('/v1/payments', { invoice_id: paid.id, amount: '10.00', received_at: new Date(monthStart(0).getTime() - 2 * 3_600_000).toISOString(), reference: 'wire-1' }).expect(201);
    auditorKey = await t.key('auditor');
  }, 120_000);

  afterAll(async () => {
    for (const f of files) rmSync(f, { force: true });
    await w.close();
    await api.close();
  });

  it('runs as a job with progress, then serves the file; the Summary ties out and every line links to its invoice and rollups', async () => {
    const auditor = bearer(auditorKey);
    const created = await api.http.post('/v1/exports').set(auditor).send({ kind: 'audit_workbook', period }).expect(202);
    expect(created.body).toMatchObject({ kind: 'audit_workbook', period, status: 'queued', progress: 0, file: null });

    let status = created.body;
    const deadline = Date.now() + 60_000;
    while (status.status !== 'done') {
      if (status.status === 'failed' || Date.now() > deadline) throw new Error(`export did not finish: ${JSON.stringify(status)}`);
      await new Promise((r) => setTimeout(r, 200));
      status = (await api.http.get(`/v1/exports/${created.body.id}`).set(auditor).expect(200)).body;
    }
    const [row] = await sql<{ file_path: string }>(api, 'select file_path from exports where id = ?', [status.id]);
    files.push(row.file_path);
    expect(status.progress).toBe(1);
    expect(status.sheets.map((s: { name: string }) => s.name)).toEqual(SHEETS);
    expect(status.rows_written).toBe(status.rows_estimated);
    expect(status.file).toMatchObject({ content_type: XLSX, url: `/v1/exports/${status.id}/file` });

    const download = await api.http.get(`/v1/exports/${status.id}/file`).set(auditor).buffer(true).parse(binary as never).expect(200);
    expect(download.headers['content-type']).toBe(XLSX);
    expect(download.headers['content-disposition']).toMatch(/^attachment; filename="closebook-audit-\d{4}-\d{2}-.+\.xlsx"$/);
    workbookBuffer = download.body as Buffer;
    expect(workbookBuffer.length).toBe(status.file.size);
    expect(createHash('sha256').update(workbookBuffer).digest('hex')).toBe(status.file.sha256);

    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(workbookBuffer as unknown as ArrayBuffer);
    expect(wb.worksheets.map((s) => s.name)).toEqual(SHEETS);
    for (const ws of wb.worksheets) {
      expect({ sheet: ws.name, view: ws.views[0] }).toMatchObject({ sheet: ws.name, view: { state: 'frozen', ySplit: 1 } });
      expect({ sheet: ws.name, filter: !!ws.autoFilter }).toEqual({ sheet: ws.name, filter: true });
    }

    // --- Summary: every tie-out PASS, and its figures are the database's.
    const summary = records(wb.getWorksheet('Summary')!);
    const tieOuts = summary.filter((r) => r.section === 'Tie-out' && (r.status === 'PASS' || r.status === 'FAIL'));
    expect(tieOuts.length).toBeGreaterThanOrEqual(5);
    expect(tieOuts.filter((r) => r.status !== 'PASS')).toEqual([]);
    const line = (prefix: string) => {
      const r = summary.find((x) => String(x.item).startsWith(prefix));
      if (!r) throw new Error(`no Summary line "${prefix}": ${summary.map((x) => x.item).join(' | ')}`);
      return r;
    };
    const [db] = await sql<{ total: string; lines: string; tax: string; events: string; covered: string }>(
      api,
      `select (select sum(total)::text from invoices where organization_id = ? and issue_date >= ?::date and issue_date < ?::date) as total,
              (select sum(l.amount)::text from invoice_lines l join invoices i on i.id = l.invoice_id where i.organization_id = ? and i.issue_date >= ?::date and i.issue_date < ?::date) as lines,
              (select sum(tax_amount)::text from invoices where organization_id = ? and issue_date >= ?::date and issue_date < ?::date) as tax,
              (select count(*)::text from usage_events where organization_id = ? and ts >= ? and ts < ?) as events,
              (select sum(event_count)::text from usage_rollups where organization_id = ? and period_end > ? and period_end <= ?) as covered`,
      Array.from({ length: 5 }, () => [t.orgId, lastMonth.toISOString(), monthStart(0).toISOString()]).flat(),
    );
    const totals = line('Σ invoice totals = Σ line amounts + Σ tax (USD)');
    expect(totals.actual).toBeCloseTo(Number(db.total), 2);
    expect(totals.expected).toBeCloseTo(Number(db.lines) + Number(db.tax), 2);
    expect(Number(db.tax)).toBeGreaterThan(0);
    const ar = line('Σ posted invoice totals = Accounts receivable');
    expect(ar.expected).toBeCloseTo(Number(db.total), 2);
    expect(ar.actual).toBe(ar.expected);
    const usage = line('Σ rollup event counts');
    expect(usage.actual).toBe(Number(db.covered));
    expect(usage.actual).toBe(2_400 + 300);
    expect(line('Usage events timestamped in the month').actual).toBe(Number(db.events));
    expect(Number(db.events)).toBe(2_400 + 300 + 40 + 7 + 1);

    // --- Cross-references: each line's invoice and rollups exist on their sheets.
    const invoices = records(wb.getWorksheet('Invoices')!);
    const lines = records(wb.getWorksheet('Invoice lines')!);
    const rollups = records(wb.getWorksheet('Rollups')!);
    const invoiceIds = new Set(invoices.map((r) => r.id));
    const rollupIds = new Set(rollups.map((r) => r.id));
    expect(invoices.length).toBeGreaterThanOrEqual(2);
    expect(lines.length).toBeGreaterThanOrEqual(invoices.length);
    let linked = 0;
    for (const l of lines) {
      expect({ line: l.id, invoice: invoiceIds.has(l.invoice_id) }).toEqual({ line: l.id, invoice: true });
      for (const rid of String(l.rollup_ids ?? '').split(' ').filter(Boolean)) {
        expect({ line: l.id, rollup: rid, found: rollupIds.has(rid) }).toEqual({ line: l.id, rollup: rid, found: true });
        linked++;
      }
    }
    expect(linked).toBeGreaterThanOrEqual(2); // each subscription's usage line points at its rollup
    const dbLines = await sql<{ n: number }>(api, `select count(*)::int as n from invoice_lines l join invoices i on i.id = l.invoice_id where i.organization_id = ? and i.issue_date >= ?::date and i.issue_date < ?::date`, [t.orgId, lastMonth.toISOString(), monthStart(0).toISOString()]);
    expect(lines.length).toBe(dbLines[0].n);
    // The lines of each invoice sum to its subtotal on the sheets too.
    for (const inv of invoices) {
      const sum = lines.filter((l) => l.invoice_id === inv.id).reduce((a, l) => a + Number(l.amount), 0);
      expect(sum).toBeCloseTo(Number(inv.subtotal), 2);
    }

    // --- Formats: money and dates are numbers and dates with formats, not text.
    const invSheet = wb.getWorksheet('Invoices')!;
    const totalCol = (invSheet.getRow(1).values as string[]).indexOf('total');
    const periodCol = (invSheet.getRow(1).values as string[]).indexOf('period_start');
    expect(typeof invSheet.getRow(2).getCell(totalCol).value).toBe('number');
    expect(invSheet.getRow(2).getCell(totalCol).numFmt).toBe('#,##0.00');
    expect(invSheet.getRow(2).getCell(periodCol).value).toBeInstanceOf(Date);
    expect(invSheet.getRow(2).getCell(periodCol).numFmt).toBe('yyyy-mm-dd hh:mm:ss');

    // --- Ledger entries: the AR lines of the invoice entries sum to the Summary's figure.
    const entries = records(wb.getWorksheet('Ledger entries')!);
    const arNet = entries
      .filter((e) => e.source_type === 'invoice' && e.account_code === '1100' && invoiceIds.has(e.source_id))
      .reduce((a, e) => a + Number(e.debit ?? 0) - Number(e.credit ?? 0), 0);
    expect(arNet).toBeCloseTo(Number(ar.actual), 2);

    // --- Usage events: every event of the month, attribution, XML-unsafe characters replaced.
    const events = records(wb.getWorksheet('Usage events')!);
    expect(events.length).toBe(Number(db.events));
    expect(events.filter((e) => e.subscription_id === null || e.subscription_id === undefined)).toHaveLength(7);
    expect(events.filter((e) => e.event_name === 'bell\uFFFDevent')).toHaveLength(1);

    // --- Placeholders and the audit log.
    expect(wb.getWorksheet('Reconciliation results')!.rowCount).toBeGreaterThanOrEqual(1);
    expect(wb.getWorksheet('Exceptions')!.rowCount).toBeGreaterThanOrEqual(1);
    const audit = records(wb.getWorksheet('Audit log')!);
    expect(audit.some((a) => a.action === 'invoice.finalized')).toBe(true);
  }, 90_000);

  it('continues the usage events on further sheets past the row limit (threshold injected), with progress', async () => {
    const exportsService = api.app.get(ExportsService);
    const exp = await exportsService.create(em(), t.orgId, { kind: 'audit_workbook', period }, { actor: 'test', keyId: null });
    // Not done yet: the file is a 409.
    const early = await api.http.get(`/v1/exports/${exp.id}/file`).set(bearer(auditorKey)).expect(409);
    expect(early.body.error.code).toBe('export_not_ready');

    const progress: number[] = [];
    const done = await exportsService.run(em(), exp.id, { maxRowsPerSheet: 1_000, progressEvery: 500, onProgress: (p) => void progress.push(p.written) });
    files.push(done.filePath!);
    expect(progress.length).toBeGreaterThan(4);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(done.filePath!);
    const parts = wb.worksheets.filter((s) => s.name.startsWith('Usage events'));
    expect(parts.map((s) => s.name)).toEqual(['Usage events', 'Usage events 2', 'Usage events 3']);
    expect(parts.map((s) => s.rowCount - 1)).toEqual([1_000, 1_000, 748]);
    for (const s of parts) {
      expect(s.getRow(1).getCell(1).value).toBe('event_id');
      expect(s.views[0]).toMatchObject({ state: 'frozen', ySplit: 1 });
    }
    // No event twice, none lost, in one order across the parts.
    const ids = parts.flatMap((s) => records(s).map((r) => String(r.event_id)));
    expect(new Set(ids).size).toBe(2_748);
    expect(done.sheets!.filter((s) => s.name.startsWith('Usage events')).map((s) => s.rows)).toEqual([1_000, 1_000, 748]);
    const summary = records(wb.getWorksheet('Summary')!);
    expect(String(summary.find((r) => r.section === 'Sheet' && r.item === 'Usage events')?.detail)).toContain('Usage events 3');
    // The sheets after the split are still there, in order.
    expect(wb.worksheets.map((s) => s.name).slice(7)).toEqual(['Ledger entries', ...SHEETS.slice(6)]);
  }, 60_000);

  it('admits auditor, finance and admin keys only, answers 404 across tenants and 400 for a bad period', async () => {
    const support = await t.key('support');
    await api.http.post('/v1/exports').set(bearer(support)).send({ kind: 'audit_workbook', period }).expect(403);
    const finance = await t.key('finance');
    const mine = await api.http.post('/v1/exports').set(bearer(finance)).send({ kind: 'audit_workbook', period }).expect(202);
    const bad = await api.http.post('/v1/exports').set(bearer(finance)).send({ kind: 'audit_workbook', period: '2026-13' }).expect(400);
    expect(bad.body.error.field).toBe('period');
    await api.http.post('/v1/exports').set(bearer(finance)).send({ kind: 'csv', period }).expect(400);
    await api.http.post('/v1/exports').set(bearer(finance)).send({ kind: 'audit_workbook', period, extra: 1 }).expect(400);
    const other = await api.newOrg('Someone else');
    await api.http.get(`/v1/exports/${mine.body.id}`).set(bearer(other.adminKey)).expect(404);
    await api.http.get(`/v1/exports/${mine.body.id}/file`).set(bearer(other.adminKey)).expect(404);
    const list = await api.http.get('/v1/exports?limit=2').set(bearer(auditorKey)).expect(200);
    expect(list.body.data.length).toBe(2);
    expect(list.body.next_cursor).toEqual(expect.any(String));
    // Let the job finish so the file can be cleaned up.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [r] = await sql<{ status: string; file_path: string | null }>(api, 'select status, file_path from exports where id = ?', [mine.body.id]);
      if (r.status === 'done' || r.status === 'failed' || Date.now() > deadline) {
        if (r.file_path) files.push(r.file_path);
        break;
      }
      await new Promise((res) => setTimeout(res, 200));
    }
  }, 60_000);

  const office = findOffice();
  const officeIt = office ? it : it.skip;
  if (!office) console.warn('[export] LibreOffice is not installed (no libreoffice or soffice on PATH): skipping the test that converts the workbook to CSV');

  /** Every formula cell of a workbook's Summary, with the value Closebook cached for it. */
  async function summaryFormulas(buffer: Buffer) {
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(buffer as unknown as ArrayBuffer);
    const out: { address: string; item: string; formula: string; result: unknown }[] = [];
    wb.getWorksheet('Summary')!.eachRow((row) =>
      row.eachCell((c) => {
        const v = c.value as ExcelJS.CellFormulaValue | null;
        // `cell.result`: exceljs's `value` drops a falsy cached result (0).
        if (v && typeof v === 'object' && 'formula' in v) out.push({ address: c.address, item: String(row.getCell(2).value), formula: v.formula, result: (c as unknown as { result: unknown }).result });
      }),
    );
    return out;
  }

  /** Recalculates the workbook in LibreOffice: each Summary formula evaluates to Closebook's value, each live status to PASS. */
  async function expectLiveTieOuts(buffer: Buffer) {
    const formulas = await summaryFormulas(buffer);
    const recalculated = await recalculate(buffer);
    const summary = sheet(recalculated, 'Summary');
    for (const f of formulas) {
      const v = cell(summary, f.address);
      expect({ ...f, error: isError(v) ? v.error : null }).toMatchObject({ error: null });
      if (typeof f.result === 'number') expect({ ...f, value: Math.round(Number(v) * 100) / 100 }).toEqual({ ...f, value: Math.round(f.result * 100) / 100 });
      else expect({ ...f, value: v }).toEqual({ ...f, value: f.result });
      if (f.address.startsWith('E')) expect({ item: f.item, status: v }).toEqual({ item: f.item, status: 'PASS' });
    }
    return { formulas, recalculated };
  }

  officeIt('recalculated by LibreOffice: every Summary formula is the value Closebook computed, every tie-out PASS; the trial balance sheet is the API’s', async () => {
    const { formulas, recalculated } = await expectLiveTieOuts(workbookBuffer);
    const items = new Set(formulas.map((f) => f.item));
    for (const expected of [
      'Σ invoice totals = Σ line amounts + Σ tax (USD)',
      'Trial balance debits = Ledger entries debits (USD)',
      'Accounts receivable: Σ customer balances = control account (USD)',
      'AR roll-forward closing = trial balance Accounts receivable (USD)',
      'Deferred revenue roll-forward closing = trial balance Deferred revenue (credit balance) (USD)',
      'Unbilled receivables roll-forward closing = trial balance Unbilled receivables (USD)',
      'Σ payments received = receivables credited by their entries (USD)',
    ]) {
      expect([...items].some((i) => i.endsWith(expected))).toBe(true);
    }
    // The trial balance sheet, as LibreOffice reads it, is GET /v1/ledger/trial-balance for the month.
    const api_tb = (await t.get(`/v1/ledger/trial-balance?period=${period}`).expect(200)).body;
    const tb = sheet(recalculated, 'Trial balance').rows;
    const header = tb[0].map(String);
    const rowsOf = tb.slice(1).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
    const fromApi: Record<string, unknown>[] = [];
    const n = (m: { amount: string }) => Number(m.amount);
    for (const c of api_tb.currencies) {
      for (const a of c.accounts) fromApi.push({ currency: c.currency, row: 'account', account_code: a.code, opening: n(a.opening), debits: n(a.debits), credits: n(a.credits), closing: n(a.closing) });
      for (const sub of c.sub_ledgers)
        for (const p of sub.parties) fromApi.push({ currency: c.currency, row: 'sub-ledger', account_code: sub.account_code, party_id: p.party_id, opening: n(p.opening), debits: n(p.debits), credits: n(p.credits), closing: n(p.closing) });
    }
    expect(fromApi.length).toBeGreaterThan(11);
    expect(rowsOf.map((r) => ({ currency: r.currency, row: r.row, account_code: String(r.account_code), ...(r.row === 'sub-ledger' ? { party_id: r.party_id } : {}), opening: r.opening ?? 0, debits: r.debits ?? 0, credits: r.credits ?? 0, closing: r.closing ?? 0 }))).toEqual(fromApi);

    // This month: a credit note today, so the Credit notes sheets and their tie-outs are live too.
    const [inv] = await sql<{ id: string }>(api, `select id from invoices where organization_id = ? and kind = 'period' and total > 0 order by total desc limit 1`, [t.orgId]);
    const full = (await t.get(`/v1/invoices/${inv.id}`).expect(200)).body;
    const fee = full.lines.find((l: { amount: { amount: string } }) => Number(l.amount.amount) > 5);
    await t.post(`/v1/invoices/${inv.id}/credit-notes`, { reason: 'goodwill', lines: [{ invoice_line_id: fee.id, amount: '5.00' }] }).expect(201);
    const exportsService = api.app.get(ExportsService);
    const now = await exportsService.create(em(), t.orgId, { kind: 'audit_workbook', period: monthStart(0).toISOString().slice(0, 7) }, { actor: 'test', keyId: null });
    const done = await exportsService.run(em(), now.id);
    files.push(done.filePath!);
    const live = await expectLiveTieOuts(readFileSync(done.filePath!));
    expect(live.formulas.some((f) => f.item.startsWith('Σ credit note totals = receivables and customer credits credited by their entries'))).toBe(true);
    expect(sheet(live.recalculated, 'Credit notes').rows.length).toBe(2);
  }, 240_000);

  officeIt('opens in a real spreadsheet application: LibreOffice converts it to CSV with the Summary', async () => {
    expect(workbookBuffer).toBeDefined();
    // Its own throwaway profile (test/helpers/libreoffice.ts), so a concurrent LibreOffice is not in the
    // way, with every formula recalculated on load. CSV: comma, double quote, UTF-8, from line 1.
    const rows = await convertToCsv(workbookBuffer);
    expect(rows[0]).toEqual(['section', 'item', 'expected', 'actual', 'status', 'detail']);
    // The Summary as LibreOffice computed it: the tie-out lines, numbers equal, PASS.
    const totals = rows.find((r) => r[1] === 'Σ invoice totals = Σ line amounts + Σ tax (USD)');
    expect(totals).toBeDefined();
    expect(Number(totals![2])).toBeGreaterThan(0);
    expect(totals![3]).toBe(totals![2]);
    expect(totals![4]).toBe('PASS');
    const tieOuts = rows.filter((r) => r[0] === 'Tie-out' && (r[4] === 'PASS' || r[4] === 'FAIL'));
    expect(tieOuts.length).toBeGreaterThanOrEqual(5);
    expect(tieOuts.filter((r) => r[4] !== 'PASS')).toEqual([]);
  }, 150_000);
});
