// The close gate over HTTP (SPEC §6): a clean month reconciles, is signed off by two people and
// closes; support and auditor keys can do none of it; a sign-off is withdrawn when its data changes;
// an open exception blocks the close until it is resolved with its queue's evidence.
import type { EntityManager } from '@mikro-orm/postgresql';
import { InvoiceLine, InvoicesService, LedgerPostingHook } from '@closebook/invoicing';
import { RollupsService } from '@closebook/metering';
import { ExportsService } from '@closebook/traceability';
import ExcelJS from 'exceljs';
import { startApi, bearer, type TestApi } from '../helpers/api';
import { monthStart, runPeriodEnd, sendAll, sql, startWorker, tenant, type InvoiceJson, type Tenant } from '../invoicing/fixtures';

const ym = (d: Date) => d.toISOString().slice(0, 7);

describe('close gate', () => {
  let api: TestApi;
  let w: Awaited<ReturnType<typeof startWorker>>;
  beforeAll(async () => {
    api = await startApi();
    w = await startWorker();
  });
  afterAll(async () => {
    await w.close();
    await api.close();
  });

  /** A month M-2 with a subscription, usage and finalized invoices; M-1 has its period invoice too. */
  async function month(name: string) {
    const m2 = monthStart(-2);
    const t = await tenant(api, name);
    await t.product({ key: 'pro_fee', name: 'Pro plan', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('pro', [
      { product_key: 'pro_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.01' } },
    ]);
    const s = await t.subscribe('acme', 'pro', { started_at: m2, tax_rate: '0.1' });
    await sendAll(t, t.calls('acme', 'api.call', 3_000, new Date(m2.getTime() + 5 * 86_400_000)));
    await runPeriodEnd(api, w, t.orgId);
    // Oldest first (an invoice cannot finalize before an earlier period's): opening, then each period.
    const drafts = (await t.invoices('&status=draft')).sort((a, b) => a.period_start.localeCompare(b.period_start) || (a.kind === 'opening' ? -1 : 1));
    for (const inv of drafts) await t.post(`/v1/invoices/${inv.id}/finalize`, {}).expect(201);
    return { t, s, period: ym(m2) };
  }

  async function reconcile(t: Tenant, period: string, key?: string) {
    const auth = key ? bearer(key) : t.auth;
    await api.http.post(`/v1/periods/${period}/month-end`).set(auth).send({}).expect(200);
    const started = await api.http.post(`/v1/periods/${period}/reconciliation-runs`).set(auth).send({}).expect(202);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const run = (await t.get(`/v1/periods/${period}/reconciliation-runs/${started.body.id}`).expect(200)).body;
      if (['passed', 'failed', 'error'].includes(run.status)) return run;
      if (Date.now() > deadline) throw new Error(`run did not finish: ${JSON.stringify(run)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const status = async (t: Tenant, period: string) => (await t.get(`/v1/periods/${period}/close`).expect(200)).body;
  const codes = (s: { blockers: { code: string }[] }) => s.blockers.map((b) => b.code).sort();

  it('a clean month passes every check and closes after two sign-offs; support and auditor cannot sign or close', async () => {
    const { t, period } = await month('close: clean');
    const before = await status(t, period);
    expect(codes(before)).toEqual(expect.arrayContaining(['check_not_run', 'sign_off_missing']));

    const run = await reconcile(t, period);
    const failures = (await t.get(`/v1/periods/${period}/reconciliation-runs/${run.id}/results?status=fail&limit=20`).expect(200)).body.data;
    expect(failures).toEqual([]);
    expect(run.status).toBe('passed');
    const s1 = await status(t, period);
    expect(s1.checks.map((c: { check: string; status: string; fresh: boolean }) => [c.check, c.status, c.fresh])).toEqual([
      ['events_rollups', 'passed', true],
      ['rollups_lines', 'passed', true],
      ['invoices_ledger', 'passed', true],
      ['completeness', 'passed', true],
      ['deferred_revenue', 'passed', true],
      ['flux', 'passed', true],
    ]);
    expect(codes(s1)).toEqual(['sign_off_missing', 'sign_off_missing']);

    // Closing now is refused with exactly that list, and changes nothing.
    const refused = await t.post(`/v1/periods/${period}/close`, {}).expect(422);
    expect(refused.body.error.code).toBe('close_blocked');
    expect(refused.body.error.details.blockers.map((b: { code: string }) => b.code)).toEqual(['sign_off_missing', 'sign_off_missing']);

    // Roles: support and auditor read the status but can neither sign nor close.
    for (const role of ['support', 'auditor']) {
      const key = await t.key(role);
      await api.http.get(`/v1/periods/${period}/close`).set(bearer(key)).expect(200);
      await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(key)).send({ step: 'preparer' }).expect(403);
      await api.http.post(`/v1/periods/${period}/close`).set(bearer(key)).send({}).expect(403);
      await api.http.post(`/v1/periods/${period}/reconciliation-runs`).set(bearer(key)).send({}).expect(403);
    }

    const preparer = await t.key('finance');
    const reviewer = await t.key('finance');
    const signed = await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(preparer)).send({ step: 'preparer', note: 'tied out' }).expect(201);
    expect(signed.body).toMatchObject({ step: 'preparer', signer_role: 'finance', state: 'valid', stale_checks: [] });
    // One person cannot give both steps.
    expect((await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(preparer)).send({ step: 'reviewer' }).expect(422)).body.error.code).toBe('same_signer');
    expect((await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(reviewer)).send({ step: 'nope' }).expect(400)).body.error.code).toBe('unknown_step');
    await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(reviewer)).send({ step: 'reviewer' }).expect(201);
    expect(await status(t, period)).toMatchObject({ closable: true, blockers: [] });

    const closed = await t.post(`/v1/periods/${period}/close`, {}).expect(200);
    expect(closed.body).toMatchObject({ ledger_status: 'closed', transitioned: true, state: 'closed', closed: { by: expect.any(String) } });
    // The result names why it cannot close again, and what it closed on.
    expect(closed.body.blockers.map((b: { code: string }) => b.code)).toEqual(['period_closed']);
    expect(closed.body.sign_offs.given.map((g: { step: string; state: string }) => [g.step, g.state])).toEqual([
      ['preparer', 'valid'],
      ['reviewer', 'valid'],
    ]);
    expect(closed.body.checks.map((c: { run_id: string }) => c.run_id)).toEqual(Array(6).fill(run.id));
    expect((await t.get(`/v1/ledger/periods/${period}`).expect(200)).body.status).toBe('closed');
    const [webhook] = await sql<{ payload: { period: string } }>(api, `select payload from outbox_messages where organization_id = ? and type = 'period.closed'`, [t.orgId]);
    expect(webhook.payload.period).toBe(period);
    // The auditor workbook of the closed month carries the run's results and the checks' status in its Summary.
    const em = () => api.orm.em.fork() as EntityManager;
    const exports = api.app.get(ExportsService);
    const exp = await exports.create(em(), t.orgId, { kind: 'audit_workbook', period }, { actor: 'test', keyId: null });
    const done = await exports.run(em(), exp.id);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(done.filePath!);
    const cells = (name: string) => {
      const out: string[][] = [];
      wb.getWorksheet(name)!.eachRow((row) => out.push((row.values as unknown[]).slice(1).map((v) => String(v ?? ''))));
      return out;
    };
    const summary = cells('Summary');
    for (const check of ['events_rollups', 'rollups_lines', 'invoices_ledger', 'completeness', 'deferred_revenue', 'flux']) {
      expect(summary.find((r) => r[1] === `Check ${check}`)).toEqual(expect.arrayContaining(['PASS']));
    }
    const results = cells('Reconciliation results');
    expect(results[0].slice(0, 6)).toEqual(['id', 'run_id', 'check', 'item_key', 'item_type', 'status']);
    expect(new Set(results.slice(1).map((r) => r[1]))).toEqual(new Set([run.id]));
    expect(results.slice(1).every((r) => r[5] === 'pass')).toBe(true);
    expect(cells('Exceptions').length).toBeGreaterThanOrEqual(1);

    // Closing again is one transition; nothing can be posted dated in it any more (the database says so).
    expect((await t.post(`/v1/periods/${period}/close`, {}).expect(200)).body.transitioned).toBe(false);
    await expect(
      sql(api, `insert into journal_entries (id, created_at, organization_id, currency, entry_date, key, source_type, source_id, description) values (gen_random_uuid(), now(), ?, 'USD', ?::date, 'raw', 'test', 'x', 'raw')`, [t.orgId, `${period}-15`]),
    ).rejects.toThrow(/closed/);
  });

  it('a sign-off goes stale when the data under a signed check changes (a read withdraws nothing), and the close waits for a new run and a new sign-off', async () => {
    const { t, s, period } = await month('close: stale');
    expect((await reconcile(t, period)).status).toBe('passed');
    const a = await t.key('finance');
    await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(a)).send({ step: 'preparer' }).expect(201);

    // A late event in the signed month: the events under events_rollups change.
    await t.send(t.calls('acme', 'api.call', 1, new Date(monthStart(-2).getTime() + 6 * 86_400_000)));
    await api.http.post(`/v1/periods/${period}/month-end`).set(t.auth).send({}).expect(200);
    const after = await status(t, period);
    expect(after.sign_offs.given).toEqual([expect.objectContaining({ step: 'preparer', state: 'stale', stale_checks: expect.arrayContaining(['events_rollups']) })]);
    expect(codes(after)).toEqual(expect.arrayContaining(['check_stale', 'sign_off_stale', 'sign_off_missing']));
    // Reading the status withdrew nothing: the sign-off is as it was given.
    const list = (await t.get(`/v1/periods/${period}/sign-offs`).expect(200)).body.data;
    expect(list).toEqual([expect.objectContaining({ step: 'preparer', withdrawn_at: null })]);

    // The late event became a late_usage exception: it blocks the close until resolved with its evidence.
    const rerun = await reconcile(t, period);
    // It finished (the late usage shows as a warning of rollups_lines, never as an error).
    expect(['passed', 'failed']).toContain(rerun.status);
    const blocked = await status(t, period);
    expect(codes(blocked)).toContain('open_exceptions');
    const open = (await t.get(`/v1/exceptions?period=${period}&status=open`).expect(200)).body.data as { id: string; type: string; queue_id: string }[];
    expect(open.map((e) => e.type)).toContain('late_usage');
    const late = open.find((e) => e.type === 'late_usage')!;
    // Without the queue's evidence (a note), resolving is refused and changes nothing.
    expect((await t.post(`/v1/exceptions/${late.id}/resolve`, { kind: 'corrected' }).expect(422)).body.error.code).toBe('evidence_required');
    await t.post(`/v1/exceptions/${late.id}/resolve`, { kind: 'corrected', note: 'billed as an adjustment on the next invoice' }).expect(201);
    const [pending] = await sql<{ kind: string; source_type: string }>(api, `select kind, source_type from invoice_pending_items where subscription_id = ? and source_type = 'late_usage'`, [s.subscriptionId]);
    expect(pending).toMatchObject({ kind: 'adjustment', source_type: 'late_usage' });
    const remaining = (await t.get(`/v1/exceptions?period=${period}&status=open`).expect(200)).body.data as { id: string }[];
    for (const e of remaining) await t.post(`/v1/exceptions/${e.id}/waive`, { note: 'accepted in review' }).expect(201);

    // Billing the late usage on the next invoice changes nothing this month's checks compare: no check goes stale.
    expect(codes(await status(t, period))).not.toContain('check_stale');
    await reconcile(t, period);
    const fresh = await status(t, period);
    expect(codes(fresh)).toEqual(['sign_off_missing', 'sign_off_stale']);
    // Signing the step again supersedes the stale sign-off: that write withdraws it, as history.
    await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(a)).send({ step: 'preparer' }).expect(201);
    const history = (await t.get(`/v1/periods/${period}/sign-offs`).expect(200)).body.data as { id: string; withdrawn_at: string | null; withdrawn_reason: string | null }[];
    const withdrawn = history.filter((x) => x.withdrawn_at);
    expect(withdrawn).toEqual([expect.objectContaining({ withdrawn_reason: expect.stringMatching(/superseded.*events_rollups/) })]);
    // The withdrawal is history: the database refuses to un-withdraw or delete it.
    await expect(sql(api, 'update close_sign_offs set withdrawn_at = null where id = ?', [withdrawn[0].id])).rejects.toThrow(/withdrawn, once/);
    await expect(sql(api, 'delete from close_sign_offs where id = ?', [withdrawn[0].id])).rejects.toThrow(/append-only/);
    await api.http.post(`/v1/periods/${period}/sign-offs`).set(t.auth).send({ step: 'reviewer' }).expect(201);
    await t.post(`/v1/periods/${period}/close`, {}).expect(200);
  });

  it('in a later month each kind of break opens the right exception in the right queue, blocks the close, and the close succeeds once each is resolved with its evidence', async () => {
    const [m2, m1, m0] = [monthStart(-2), monthStart(-1), monthStart(0)];
    const hour = 3_600_000;
    const em = () => api.orm.em.fork() as EntityManager;
    // Organizations whose invoice lines a test alters in SQL are named "tampered: …" (other suites' scans skip them).
    const t = await tenant(api, 'tampered: close breaks');
    await t.product({ key: 'pro_fee', name: 'Pro plan', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('pro', [
      { product_key: 'pro_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.01' } },
    ]);
    const s = await t.subscribe('acme', 'pro', { started_at: m2 });
    // A second customer from M-1: its opening invoice is a document of M-1.
    const beta = await t.subscribe('beta', 'pro', { started_at: m1 });
    // A consulting engagement in M-1, billed in arrears on the invoice dated M-1's last day: services revenue 0 → 5,000.
    await t.post(`/v1/subscriptions/${s.subscriptionId}/charges`, { description: 'Consulting engagement', quantity: '1', unit_amount: '5000', date: new Date(m1.getTime() + 20 * 86_400_000).toISOString() }).expect(201);
    await sendAll(t, [...t.calls('acme', 'api.call', 3_000, new Date(m2.getTime() + 5 * 86_400_000)), ...t.calls('acme', 'api.call', 1_500, new Date(m1.getTime() + 5 * 86_400_000))]);
    await runPeriodEnd(api, w, t.orgId);
    // Documents finalized when they would have been (an hour after each period end), so each month has its own.
    const invoices = api.app.get(InvoicesService);
    const [opening] = await t.invoices(`&subscription=${s.subscriptionId}&kind=opening`);
    await invoices.finalize(em(), t.orgId, opening.id, new Date(m2.getTime() + hour));
    const invM2 = await t.periodInvoice(s.subscriptionId, m2);
    await invoices.finalize(em(), t.orgId, invM2.id, new Date(m1.getTime() + hour));
    const invM1 = await t.periodInvoice(s.subscriptionId, m1);
    await invoices.finalize(em(), t.orgId, invM1.id, new Date(m0.getTime() + hour));
    const [betaOpening] = await t.invoices(`&subscription=${beta.subscriptionId}&kind=opening`);
    await invoices.finalize(em(), t.orgId, betaOpening.id, new Date(m1.getTime() + hour));
    await invoices.finalize(em(), t.orgId, (await t.periodInvoice(beta.subscriptionId, m1)).id, new Date(m0.getTime() + hour));
    const P2 = ym(m2);
    const P1 = ym(m1);

    // M-2 is clean: it closes.
    expect((await reconcile(t, P2)).status).toBe('passed');
    const [finance, reviewer] = [await t.key('finance'), await t.key('finance')];
    const signAndClose = async (period: string) => {
      await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(finance)).send({ step: 'preparer' }).expect(201);
      await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(reviewer)).send({ step: 'reviewer' }).expect(201);
      return api.http.post(`/v1/periods/${period}/close`).set(bearer(finance)).send({});
    };
    expect((await signAndClose(P2)).status).toBe(200);

    // M-1, broken five ways.
    // (a) a rollup row altered in SQL: 1,500 calls become 1,505.
    await sql(api, `update usage_rollups set event_count = event_count + 5, aggregate = aggregate + 5 where subscription_id = ? and period_start = ? and product_key = 'api_calls'`, [s.subscriptionId, m1.toISOString()]);
    // (b) an invoice line altered in SQL, bypassing immutability: the M-1 overage 5.00 becomes 6.00.
    const overageM1 = (await t.invoice(invM1.id)).lines.find((l) => l.type === 'usage_overage')!;
    expect(overageM1.amount.amount).toBe('5.00');
    await em().transactional(async (tx) => {
      await tx.execute('set local session_replication_role = replica');
      await tx.execute('update invoice_lines set amount = 6.00, amount_exact = 6 where id = ?', [overageM1.id]);
    });
    // (c) the ledger entry of an invoice dated in M-1 (beta's opening invoice) is missing.
    await em().transactional(async (tx) => {
      await tx.execute('set local session_replication_role = replica');
      await tx.execute('delete from journal_lines where entry_id in (select id from journal_entries where organization_id = ? and key = ?)', [t.orgId, `invoice:${betaOpening.id}`]);
      await tx.execute('delete from journal_entries where organization_id = ? and key = ?', [t.orgId, `invoice:${betaOpening.id}`]);
    });
    // (d) the flux jump is already there (services 5,000.00 against 0.00). (e) A late event in M-1 after its invoice was finalized.
    await t.send(t.calls('acme', 'api.call', 100, new Date(m1.getTime() + 10 * 86_400_000)));
    await api.http.post(`/v1/periods/${P1}/month-end`).set(bearer(finance)).send({}).expect(200);
    // The late event's recompute restored the altered rollup; alter it again, as the attacker would after. The late-usage
    // watcher, which trusts rollups, records the phantom 5 calls too: month-end again, so both are seen before the run.
    await sql(api, `update usage_rollups set event_count = event_count + 5, aggregate = aggregate + 5 where subscription_id = ? and period_start = ? and product_key = 'api_calls'`, [s.subscriptionId, m1.toISOString()]);
    await api.http.post(`/v1/periods/${P1}/month-end`).set(bearer(finance)).send({}).expect(200);
    const run = await reconcile(t, P1);
    expect(run.status).toBe('failed');

    type Exc = { id: string; type: string; check_key: string; item_key: string; queue_id: string; expected: string | null; actual: string | null; variance: string | null; status: string };
    const open = (await t.get(`/v1/exceptions?period=${P1}&status=open&limit=100`).expect(200)).body.data as Exc[];
    const queues = new Map(((await t.get('/v1/exception-queues').expect(200)).body.data as { id: string; key: string }[]).map((q) => [q.id, q.key]));
    const byType = (type: string) => open.filter((e) => e.type === type);
    expect(byType('usage_integrity').map((e) => [queues.get(e.queue_id), e.expected, e.actual])).toEqual([['usage-integrity', '1600', '1605']]);
    expect(byType('billing_variance').map((e) => [queues.get(e.queue_id), e.expected, e.actual, e.variance])).toEqual([['billing-variance', '5.00', '6.00', '1.00']]);
    expect(byType('ledger_posting').map((e) => [queues.get(e.queue_id), e.expected, e.actual])).toEqual([['ledger-posting', betaOpening.total.amount, '0.00']]);
    expect(byType('flux').map((e) => [queues.get(e.queue_id), e.actual])).toEqual(expect.arrayContaining([['flux-review', '5000.00']]));
    const lateRows = new Map(
      (await sql<{ id: string; quantity_delta: string }>(api, `select id, quantity_delta::text as quantity_delta from late_usage where subscription_id = ?`, [s.subscriptionId])).map((r) => [r.id, r.quantity_delta]),
    );
    expect(byType('late_usage').map((e) => [queues.get(e.queue_id), lateRows.get(e.item_key)]).sort()).toEqual([
      ['late-usage', '100'],
      ['late-usage', '5'],
    ]);
    const blocked = await api.http.post(`/v1/periods/${P1}/close`).set(bearer(finance)).send({}).expect(422);
    expect(blocked.body.error.details.blockers.map((b: { code: string }) => b.code)).toContain('open_exceptions');

    // Each resolved with its queue's evidence.
    const resolve = (e: Exc, body: Record<string, unknown>) => api.http.post(`/v1/exceptions/${e.id}/resolve`).set(bearer(finance)).send(body);
    // (a) the rollup recomputed from raw events; a note says so.
    await api.app.get(RollupsService).recompute(em(), s.subscriptionId, m1);
    await resolve(byType('usage_integrity')[0], { kind: 'corrected', note: 'rollup recomputed from the raw events' }).expect(201);
    // (b) without a credit note, invoice or adjustment the billing variance cannot be resolved; with a credit note it is.
    expect((await resolve(byType('billing_variance')[0], { kind: 'corrected', note: 'line altered' }).expect(422)).body.error.code).toBe('evidence_required');
    const cn = await resolve(byType('billing_variance')[0], { kind: 'corrected', note: 'customer credited the 1.00 billed above the rated amount', credit_note: { amount: '1.00', reason: 'line altered after finalization' } }).expect(201);
    expect(cn.body.evidence.credit_note_id).toEqual(expect.any(String));
    // (c) the missing entry posted again (same key, same lines) and cited.
    await em().transactional(async (tx) => {
      const invoice = await tx.findOneOrFail('Invoice', { id: betaOpening.id });
      const lines = await tx.find(InvoiceLine, { invoiceId: betaOpening.id }, { orderBy: { position: 'asc' } });
      await api.app.get(LedgerPostingHook).invoiceFinalized(tx, invoice as never, lines);
    });
    const [entry] = await sql<{ id: string }>(api, 'select id from journal_entries where organization_id = ? and key = ?', [t.orgId, `invoice:${betaOpening.id}`]);
    expect((await resolve(byType('ledger_posting')[0], { kind: 'corrected', note: 'reposted' }).expect(422)).body.error.code).toBe('evidence_required');
    await resolve(byType('ledger_posting')[0], { kind: 'corrected', note: 'entry posted again from the finalized invoice', evidence: { ledger_entry_id: entry.id } }).expect(201);
    // (d) the jump explained.
    for (const e of byType('flux')) await resolve(e, { kind: 'accepted', note: 'one-off consulting engagement, signed SOW' }).expect(201);
    // (e) the late usage billed as an adjustment, with its original period, on the next invoice.
    for (const e of byType('late_usage')) {
      if (lateRows.get(e.item_key) === '100') await resolve(e, { kind: 'corrected', note: 'bill on the next invoice' }).expect(201);
      else await api.http.post(`/v1/exceptions/${e.id}/waive`).set(bearer(finance)).send({ note: 'phantom calls of the tampered rollup, not usage' }).expect(201);
    }
    const upcoming = (await t.get(`/v1/subscriptions/${s.subscriptionId}/upcoming-invoice`).expect(200)).body;
    const adjustment = upcoming.invoice.lines.find((l: { type: string }) => l.type === 'adjustment');
    expect(adjustment).toMatchObject({ period_start: m1.toISOString(), period_end: m0.toISOString(), amount: { amount: '1.00', currency: 'USD' } });

    // Run again on the corrected data: what was fixed passes (the altered line still replays to 5.00, its
    // exception stays resolved with its credit note), nothing blocks but the sign-offs, and the month closes.
    await reconcile(t, P1);
    expect((await t.get(`/v1/exceptions?period=${P1}&status=open&limit=100`).expect(200)).body.data).toEqual([]);
    const after = await status(t, P1);
    expect(after.blockers.map((b: { code: string }) => b.code).filter((c: string) => c !== 'sign_off_missing')).toEqual([]);
    expect((await t.get(`/v1/exceptions?period=${P1}&status=open&limit=100`).expect(200)).body.data).toEqual([]);
    const closed = await signAndClose(P1);
    expect(closed.status).toBe(200);
    expect(closed.body.ledger_status).toBe('closed');
  });
});
