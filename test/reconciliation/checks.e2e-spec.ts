// Reconciliation checks and runs (SPEC §6) over a real month built with the invoicing fixtures:
// catalog, customers, subscriptions, events, the period-end pipeline, finalization and the posting
// rules. A clean month passes every check; each breakage (made in SQL behind the services' back)
// fails the right check with the right amounts, opens one exception per item, and re-running
// neither duplicates results' exceptions nor resolves another period's.
import { createHash } from 'node:crypto';
import { EntityManager } from '@mikro-orm/postgresql';
import fc from 'fast-check';
import { canonicalJson } from '@closebook/platform';
import { ACCOUNTS, LedgerService, RevenueRecognitionService } from '@closebook/ledger';
import { RollupsService } from '@closebook/metering';
import { LateUsageService } from '@closebook/invoicing';
import {
  BULK_COMPUTE_ROLLUPS_SQL,
  CheckFingerprints,
  CHECK_KEYS,
  EventsRollupsCheck,
  EVENTS_ROLLUPS_LANES,
  EVENTS_ROLLUPS_PAGE,
  ReconciliationRunsService,
  RollupsLinesCheck,
  ROLLUPS_LINES_INVOICES_PAGE,
  toleranceStatusSql,
  withinTolerance,
  type ReconciliationRun,
  type Tolerance,
} from '@closebook/reconciliation';
import { bearer, startApi, type TestApi } from '../helpers/api';
import { DAY, monthStart, rollUp, runPeriodEnd, sendAll, sleep, sql, startWorker, tenant, type Tenant } from '../invoicing/fixtures';

const lastMonth = monthStart(-1);
const thisMonth = monthStart(0);
const ym = (d: Date) => d.toISOString().slice(0, 7);
const LAST = ym(lastMonth);
const THIS = ym(thisMonth);
const day = (d: Date) => d.toISOString().slice(0, 10);
const inLastMonth = (n: number) => new Date(lastMonth.getTime() + (n - 1) * DAY + 3_600_000);

interface ResultRow {
  check_key: string;
  item_key: string;
  status: string;
  expected: string | null;
  actual: string | null;
  variance: string | null;
  details: Record<string, unknown>;
}

describe('reconciliation checks', () => {
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

  const em = () => api.orm.em.fork() as EntityManager;
  const runs = () => api.app.get(ReconciliationRunsService);

  /** A tenant with `customers` subscriptions to a $49 plan with 10,000 calls included, $0.005 over; last month billed and finalized. */
  async function month(name: string, usage: number[]) {
    const t = await tenant(api, name);
    await t.product({ key: 'starter_fee', name: 'Starter plan', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('starter', [
      { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    const subs = [];
    for (let i = 0; i < usage.length; i++) subs.push(await t.subscribe(`c${i + 1}`, 'starter', { started_at: lastMonth }));
    const events = usage.flatMap((n, i) => t.calls(`c${i + 1}`, 'api.call', n, inLastMonth(3 + i)));
    await sendAll(t, events);
    await rollUp(api, t.orgId);
    await runPeriodEnd(api, w, t.orgId);
    await finalizeAll(t);
    // Last month's month-end work: its fees (billed on its first day) are recognized.
    await api.app.get(RevenueRecognitionService).recognize(em(), t.orgId, LAST);
    return { t, subs };
  }

  async function finalizeAll(t: Tenant) {
    const drafts = (await t.invoices('&status=draft')).sort((a, b) => a.period_start.localeCompare(b.period_start) || (a.kind === 'opening' ? -1 : 1));
    for (const inv of drafts) {
      const r = await t.post(`/v1/invoices/${inv.id}/finalize`, {});
      if (r.status !== 200 && r.status !== 201) throw new Error(`finalize: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }

  const results = (runId: string) =>
    sql<ResultRow>(api, 'select check_key, item_key, status, expected::text, actual::text, variance::text, details from reconciliation_results where run_id = ? order by check_key, item_key', [runId]);

  const failures = async (run: ReconciliationRun) => (await results(run.id)).filter((r) => r.status === 'fail');

  const summaryOf = (run: ReconciliationRun) =>
    Object.fromEntries(Object.entries((run.capture.checks ?? {}) as Record<string, { status: string; failed?: number }>).map(([k, v]) => [k, v.status]));

  it('a clean month passes every check, inline and through the BullMQ flow; the capture hashes to capture_hash; fingerprints track the data', async () => {
    const { t, subs } = await month('Recon clean', [25_000, 8_000]);

    // Last month: every document is dated in it (opening invoices on its first day, period invoices on its last).
    const last = await runs().runNow(em(), t.orgId, LAST, { startedBy: 'test' });
    expect(await failures(last)).toEqual([]);
    expect(last.status).toBe('passed');
    expect(summaryOf(last)).toEqual(Object.fromEntries(CHECK_KEYS.map((k) => [k, 'passed'])));
    const lastResults = await results(last.id);
    const byCheck = (c: string) => lastResults.filter((r) => r.check_key === c);
    // Two subscriptions × api_calls rollups recomputed from 33,000 events.
    expect(byCheck('events_rollups').map((r) => [r.item_key, r.expected, r.actual])).toEqual(
      expect.arrayContaining([
        [`rollup:${subs[0].subscriptionId}:${day(lastMonth)}:api_calls:-`, '25000', '25000'],
        [`rollup:${subs[1].subscriptionId}:${day(lastMonth)}:api_calls:-`, '8000', '8000'],
      ]),
    );
    // acme: included 10,000 at 0 and 15,000 over = 75.00; beta: included 8,000 at 0.
    expect(byCheck('rollups_lines').map((r) => [r.expected, r.actual]).sort()).toEqual([['0.00', '0.00'], ['0.00', '0.00'], ['75.00', '75.00']]);
    expect(byCheck('completeness').map((r) => [r.item_key, r.actual])).toEqual(
      expect.arrayContaining(subs.map((s) => [`period:${s.subscriptionId}:${day(lastMonth)}`, '1'])),
    );
    // Every invoice of the month has its entry, dated as the invoice, with AR = total; the sub-ledger ties out.
    const invoices = await t.invoices('');
    expect(byCheck('invoices_ledger').filter((r) => r.item_key.startsWith('invoice:')).map((r) => [r.item_key, r.expected, r.actual, (r.details as { dated_as_document: boolean }).dated_as_document]).sort()).toEqual(
      invoices.map((i) => [`invoice:${i.id}`, i.total.amount, i.total.amount, true]).sort(),
    );
    expect(lastResults.find((r) => r.item_key === 'ar_subledger:USD')).toMatchObject({ status: 'pass', expected: '271.00', actual: '271.00' });
    // 4 fees of 49 billed in advance in the month (two on its first day, two for this month on its last), two recognized.
    expect(lastResults.find((r) => r.item_key === 'rollforward:USD')).toMatchObject({ status: 'pass', expected: '98.00', actual: '98.00', details: expect.objectContaining({ opening_minor: '0', billed_minor: '19600', recognized_minor: '9800' }) });
    expect(lastResults.find((r) => r.item_key === 'schedules:USD')).toMatchObject({ status: 'pass', expected: '98.00', actual: '98.00' });
    expect(lastResults.find((r) => r.item_key === 'account:4100:USD')).toMatchObject({ status: 'pass', expected: '0.00', actual: '75.00', variance: '75.00' });
    // Each check carries its population.
    const pops = (run: ReconciliationRun) => Object.fromEntries(Object.entries((run.capture.checks ?? {}) as Record<string, { population: { count: number } }>).map(([k, v]) => [k, v.population.count]));
    expect(pops(last)).toMatchObject({ events_rollups: 2, rollups_lines: 3, invoices_ledger: 4, completeness: 2, deferred_revenue: 4 });

    // The bulk recompute is metering's rollup SQL for many subscriptions at once.
    const ids = `{${subs.map((s) => s.subscriptionId).join(',')}}`;
    const bulk = await sql<{ subscription_id: string; product_key: string; event_count: string; aggregate: string; digest: string }>(api, BULK_COMPUTE_ROLLUPS_SQL, [
      t.orgId,
      lastMonth.toISOString(),
      monthStart(1).toISOString(),
      ids,
    ]);
    for (const s of subs) {
      const one = await api.app.get(RollupsService).compute(em(), s.subscriptionId, lastMonth);
      const mine = bulk.filter((b) => b.subscription_id === s.subscriptionId && new Date((b as unknown as { period_start: string }).period_start).getTime() === lastMonth.getTime());
      expect(mine.map((b) => [b.product_key, b.event_count, b.aggregate, b.digest])).toEqual(one.map((o) => [o.product_key, o.event_count, o.aggregate, o.digest]));
    }

    // This month (through the BullMQ flow), after its recognition run: no document is dated in it yet and no
    // period has ended, so the checks with nothing to compare say not_applicable, with the reason — never a silent pass.
    await api.app.get(RevenueRecognitionService).recognize(em(), t.orgId, THIS);
    // The current periods' rollups exist before the run (the sweeps would create them at any time).
    for (const s of subs) await api.app.get(RollupsService).recompute(em(), s.subscriptionId, thisMonth);
    const finance = await t.key('finance');
    const started = await api.http.post(`/v1/periods/${THIS}/reconciliation-runs`).set(bearer(finance)).send({}).expect(202);
    expect(started.body).toMatchObject({ period: THIS, status: 'queued', checks: CHECK_KEYS.map((check) => expect.objectContaining({ check, status: 'pending' })) });
    const run = await waitForRun(t, THIS, started.body.id);
    expect(Object.fromEntries(run.checks.map((c: { check: string; status: string }) => [c.check, c.status]))).toEqual({
      events_rollups: 'passed',
      rollups_lines: 'not_applicable',
      invoices_ledger: 'not_applicable',
      completeness: 'not_applicable',
      deferred_revenue: 'passed',
      flux: 'passed',
    });
    expect(run.checks.find((c: { check: string }) => c.check === 'invoices_ledger').population).toEqual({
      count: 0,
      documents: 0,
      unit: 'invoices and credit notes of the month',
      reason: 'no invoice or credit note is dated in the month',
    });
    expect(run.status).toBe('passed');
    expect(run.capture_hash).toBe(createHash('sha256').update(canonicalJson(run.capture)).digest('hex'));
    expect(Object.keys(run.capture.tolerances).sort()).toEqual([...CHECK_KEYS].sort());
    const thisResults = await results(run.id);
    // This month's two fees, billed last month, recognized in it.
    expect(thisResults.find((r) => r.item_key === 'rollforward:USD')).toMatchObject({ status: 'pass', expected: '0.00', actual: '0.00', details: expect.objectContaining({ opening_minor: '9800', billed_minor: '0', recognized_minor: '9800' }) });

    // Results are paginated and filterable; the latest per check carries the fingerprint.
    const page1 = await t.get(`/v1/periods/${THIS}/reconciliation-runs/${run.id}/results?limit=2`).expect(200);
    expect(page1.body.data).toHaveLength(2);
    const page2 = await t.get(`/v1/periods/${THIS}/reconciliation-runs/${run.id}/results?limit=2&cursor=${page1.body.next_cursor}`).expect(200);
    expect(page2.body.data[0].item_key).not.toBe(page1.body.data[1].item_key);
    const flux = await t.get(`/v1/periods/${THIS}/reconciliation-runs/${run.id}/results?check=flux&status=pass&limit=100`).expect(200);
    expect(thisResults.filter((r) => r.check_key === 'flux').length).toBeGreaterThan(0);
    expect(flux.body.data.length).toBeGreaterThan(0);
    expect(flux.body.data.every((r: { check: string; status: string }) => r.check === 'flux' && r.status === 'pass')).toBe(true);
    const latest = await runs().latest(em(), t.orgId, THIS);
    expect(latest.map((l) => l.check).sort()).toEqual([...CHECK_KEYS].sort());
    const fp = api.app.get(CheckFingerprints);
    for (const l of latest) {
      expect(l.run_id).toBe(run.id);
      expect(l.fingerprint).toBe(run.inputs_fingerprint[l.check]);
      expect((await fp.current(em(), t.orgId, THIS, l.check)).fingerprint).toBe(l.fingerprint);
    }
    // A new revenue entry changes what flux and deferred… read — only those fingerprints move.
    await api.app.get(LedgerService).post(em(), {
      organizationId: t.orgId,
      currency: 'USD',
      date: day(new Date()),
      key: `manual:${run.id}`,
      source: { type: 'manual', id: run.id },
      description: 'manual services revenue',
      lines: [
        { account_code: ACCOUNTS.CASH, debit: 100n },
        { account_code: ACCOUNTS.REVENUE_SERVICES, credit: 100n },
      ],
    });
    const fresh = Object.fromEntries((await runs().freshness(em(), t.orgId, THIS)).map((f) => [f.check, f.fresh]));
    expect(fresh).toEqual({ events_rollups: true, rollups_lines: true, invoices_ledger: true, completeness: true, deferred_revenue: true, flux: false });
  }, 180_000);

  it('breakages fail the right check with the right amounts; exceptions are opened once and auto-resolved per period', async () => {
    const { t, subs } = await month('tampered: Recon broken', [12_000, 25_000, 11_000, 14_000]);
    await api.app.get(RevenueRecognitionService).recognize(em(), t.orgId, THIS);
    const [c1, c2, c3, c4] = subs;
    const inv = async (s: (typeof subs)[number]) => t.periodInvoice(s.subscriptionId, lastMonth);

    // (a) events → rollups: c1's stored rollup says 5 more calls than its events.
    const [r1] = await sql<{ id: string; aggregate: string }>(api, `select id, aggregate::text from usage_rollups where subscription_id = ? and period_start = ? and product_key = 'api_calls'`, [c1.subscriptionId, lastMonth.toISOString()]);
    // Written as a recompute writes (computed_at moves with the numbers): invoicing watches rollups recomputed after rating.
    await sql(api, 'update usage_rollups set event_count = event_count + 5, aggregate = aggregate + 5, computed_at = clock_timestamp() where id = ?', [r1.id]);
    // Invoicing sees the changed rollup of a finalized invoice as late usage (the worker's watch job would too).
    await api.app.get(LateUsageService).watch(em(), new Date(), t.orgId);
    expect(await sql(api, 'select id from late_usage where rollup_id = ?', [r1.id])).toHaveLength(1);

    // (b) rollups → lines: c2's overage line (15,000 × 0.005 = 75.00) altered to 76.00 behind the immutability trigger.
    const overage2 = (await inv(c2)).lines.find((l) => l.type === 'usage_overage')!;
    expect(overage2.amount.amount).toBe('75.00');
    await em().transactional(async (tx) => {
      await tx.execute('set local session_replication_role = replica');
      await tx.execute('update invoice_lines set amount = amount + 1 where id = ?', [overage2.id]);
    });

    // (c) invoices → ledger: c3's period invoice entry is gone.
    const inv3 = await inv(c3);
    await em().transactional(async (tx) => {
      await tx.execute('set local session_replication_role = replica');
      await tx.execute('delete from journal_lines where entry_id in (select id from journal_entries where organization_id = ? and key = ?)', [t.orgId, `invoice:${inv3.id}`]);
      await tx.execute('delete from journal_entries where organization_id = ? and key = ?', [t.orgId, `invoice:${inv3.id}`]);
    });

    // (d) flux: 5,000.00 of services revenue this month against none last month.
    await api.app.get(LedgerService).post(em(), {
      organizationId: t.orgId,
      currency: 'USD',
      date: day(new Date()),
      key: `manual:flux:${t.orgId}`,
      source: { type: 'manual', id: t.orgId },
      description: 'one-off services',
      lines: [
        { account_code: ACCOUNTS.CASH, debit: 500_000n },
        { account_code: ACCOUNTS.REVENUE_SERVICES, credit: 500_000n },
      ],
    });

    // (e) completeness: c4's period invoice voided (missing); c1's period billed twice by another path.
    const inv4 = await inv(c4);
    await sql(api, `update invoices set status = 'void', voided_at = now() where id = ?`, [inv4.id]);
    const inv1 = await inv(c1);
    const [copy] = await em().transactional(async (tx) => {
      await tx.execute('set local session_replication_role = replica');
      return tx.execute<{ id: string }[]>(
        `insert into invoices (id, created_at, organization_id, customer_id, subscription_id, kind, billing_period_id, source_key, period_start, period_end, issue_date, status, currency,
                               subtotal, tax_amount, total, finalize_after, content_hash, rated_at)
         select gen_random_uuid(), now(), organization_id, customer_id, subscription_id, 'period', gen_random_uuid(), 'copy:' || id, period_start, period_end, issue_date, 'paid', currency,
                subtotal, tax_amount, total, finalize_after, content_hash, rated_at
         from invoices where id = ? returning id`,
        [inv1.id],
      );
    });

    const last = await runs().runNow(em(), t.orgId, LAST, { startedBy: 'test' });
    const now = await runs().runNow(em(), t.orgId, THIS, { startedBy: 'test' });
    expect(last.status).toBe('failed');
    expect(now.status).toBe('failed');
    const lastFails = await failures(last);
    const nowFails = await failures(now);
    // The lines check pages by invoice: one invoice a page gives exactly the results of one page for all.
    const linesCheck = api.app.get(RollupsLinesCheck);
    linesCheck.invoicesPerPage = 1;
    const paged = await runs()
      .runNow(em(), t.orgId, LAST, { checks: ['rollups_lines'], startedBy: 'test' })
      .finally(() => (linesCheck.invoicesPerPage = ROLLUPS_LINES_INVOICES_PAGE));
    const linesOf = async (runId: string) => (await results(runId)).filter((r) => r.check_key === 'rollups_lines').map(({ item_key, status, expected, actual }) => [item_key, status, expected, actual]);
    expect((await linesOf(paged.id)).length).toBeGreaterThan(4);
    expect(await linesOf(paged.id)).toEqual(await linesOf(last.id));
    // The events check in pages of one subscription over three lanes (two hand their rows to the
    // check's transaction) writes exactly the results of its default run, the breakage included.
    const eventsCheck = api.app.get(EventsRollupsCheck);
    Object.assign(eventsCheck, { subscriptionsPerPage: 1, lanes: 3 });
    const laned = await runs()
      .runNow(em(), t.orgId, LAST, { checks: ['events_rollups'], startedBy: 'test' })
      .finally(() => Object.assign(eventsCheck, { subscriptionsPerPage: EVENTS_ROLLUPS_PAGE, lanes: EVENTS_ROLLUPS_LANES }));
    const eventsOf = async (runId: string) => (await results(runId)).filter((r) => r.check_key === 'events_rollups').map(({ item_key, status, expected, actual, variance, details }) => [item_key, status, expected, actual, variance, details]);
    expect(await eventsOf(laned.id)).toHaveLength(4);
    expect(await eventsOf(laned.id)).toEqual(await eventsOf(last.id));
    expect(((laned.capture as { checks: Record<string, { results_hash: string }> }).checks.events_rollups.results_hash)).toBe(
      (last.capture as { checks: Record<string, { results_hash: string }> }).checks.events_rollups.results_hash,
    );
    // A lane that fails part-way leaves nothing: the first lane has written a page in the check's
    // transaction by then, and the whole transaction rolls back.
    Object.assign(eventsCheck, { subscriptionsPerPage: 1, lanes: 2 });
    const execute = EntityManager.prototype.execute;
    const lost = jest.spyOn(EntityManager.prototype, 'execute').mockImplementation(async function (this: EntityManager, ...args: unknown[]) {
      const out = await (execute as (...a: unknown[]) => Promise<unknown>).apply(this, args);
      if (typeof args[0] === 'string' && args[0].includes('json_agg(r)')) throw new Error('the lane lost its connection');
      return out;
    } as never);
    const broken = await runs()
      .runNow(em(), t.orgId, LAST, { checks: ['events_rollups'], startedBy: 'test' })
      .finally(() => {
        lost.mockRestore();
        Object.assign(eventsCheck, { subscriptionsPerPage: EVENTS_ROLLUPS_PAGE, lanes: EVENTS_ROLLUPS_LANES });
      });
    expect(broken.status).toBe('error');
    expect((broken.capture as { checks: Record<string, unknown> }).checks.events_rollups).toMatchObject({ status: 'error', error: expect.stringMatching(/lost its connection/) });
    expect(await results(broken.id)).toEqual([]);
    const item = (rows: ResultRow[], check: string, key: string) => rows.find((r) => r.check_key === check && r.item_key === key);

    // (a)
    expect(item(lastFails, 'events_rollups', `rollup:${c1.subscriptionId}:${day(lastMonth)}:api_calls:-`)).toMatchObject({
      expected: '12000',
      actual: '12005',
      variance: '5',
      details: expect.objectContaining({ expected_count: '12000', actual_count: '12005' }),
    });
    expect(lastFails.filter((r) => r.check_key === 'events_rollups')).toHaveLength(1);
    // (b)
    expect(item(lastFails, 'rollups_lines', `line:${overage2.id}`)).toMatchObject({ expected: '75.00', actual: '76.00', variance: '1.00', details: expect.objectContaining({ problems: ['amount_variance'] }) });
    // c1's usage lines cite the changed rollup, already recorded as late usage: a warning, said so.
    const overage1 = inv1.lines.find((l) => l.type === 'usage_overage')!;
    expect(item(await results(last.id), 'rollups_lines', `line:${overage1.id}`)).toMatchObject({ status: 'warn', details: expect.objectContaining({ late_usage: true, notes: ['late_usage'] }) });
    // (e) c4's usage is no longer billed by any live invoice.
    expect(item(lastFails, 'rollups_lines', `unbilled:${c4.subscriptionId}:${day(lastMonth)}:api_calls:-`)).toMatchObject({ expected: '14000', actual: '0' });
    expect(item(lastFails, 'completeness', `period:${c4.subscriptionId}:${day(lastMonth)}`)).toMatchObject({ expected: '1', actual: '0', details: expect.objectContaining({ problem: 'missing' }) });
    expect(item(lastFails, 'completeness', `period:${c1.subscriptionId}:${day(lastMonth)}`)).toMatchObject({ expected: '1', actual: '2', details: expect.objectContaining({ problem: 'duplicate' }) });
    expect(item(await results(last.id), 'completeness', `period:${c2.subscriptionId}:${day(lastMonth)}`)).toMatchObject({ status: 'pass' });
    // (c) total of c3's period invoice (dated last month): next month's fee 49 + 1,000 over × 0.005 = 54.00, and no
    // entry; the invoice billed twice by another path has no entry either.
    expect(item(lastFails, 'invoices_ledger', `invoice:${inv3.id}`)).toMatchObject({ expected: '54.00', actual: '0.00', details: expect.objectContaining({ entry_missing: true }) });
    expect(lastFails.filter((r) => r.check_key === 'invoices_ledger').map((r) => r.item_key).sort()).toEqual([`invoice:${inv3.id}`, `invoice:${copy.id}`].sort());
    // This month recognizes c3's fee, whose billing (that entry) is gone: deferred revenue goes 49.00 below its schedules.
    expect(nowFails.filter((r) => r.check_key !== 'flux').map((r) => [r.check_key, r.item_key, r.variance])).toEqual([['deferred_revenue', 'schedules:USD', '-49.00']]);
    // (d)
    expect(item(nowFails, 'flux', 'account:4300:USD')).toMatchObject({ expected: '0.00', actual: '5000.00', variance: '5000.00' });

    // One exception per failing item, keyed by (check, item, period), with its figures.
    const exceptions = () =>
      sql<{ check_key: string; item_key: string; period: string; status: string; type: string; expected: string; actual: string }>(
        api,
        `select check_key, item_key, period, status, type, expected::text, actual::text from exceptions
         where organization_id = ? and check_key in (${CHECK_KEYS.map(() => '?').join(',')}) order by check_key, item_key, period`,
        [t.orgId, ...CHECK_KEYS],
      );
    const opened = await exceptions();
    for (const f of [...lastFails.map((r) => ({ ...r, period: LAST })), ...nowFails.map((r) => ({ ...r, period: THIS }))]) {
      expect(opened.filter((e) => e.check_key === f.check_key && e.item_key === f.item_key && e.period === f.period)).toHaveLength(1);
    }
    expect(opened.find((e) => e.item_key === 'account:4300:USD')).toMatchObject({ type: 'flux', status: 'open', expected: '0.00', actual: '5000.00' });
    expect(opened.find((e) => e.item_key === `line:${overage2.id}`)).toMatchObject({ type: 'billing_variance', period: LAST });

    // Re-running: new results (a run is a snapshot), never a twin exception.
    const again = await runs().runNow(em(), t.orgId, LAST, { startedBy: 'test' });
    expect((await failures(again)).map((r) => r.item_key).sort()).toEqual(lastFails.map((r) => r.item_key).sort());
    const after = await exceptions();
    expect(after.length).toBe(opened.length);
    expect(new Set(after.map((e) => `${e.check_key}|${e.item_key}|${e.period}`)).size).toBe(after.length);

    // Widening flux's tolerance: this month's flux item passes and its exception resolves (auto);
    // last month's open items are untouched by this month's run.
    await t.post('/v1/reconciliation-tolerances', { check: 'flux', absolute: '10000', percent: null, mode: 'either' }).expect(201);
    const widened = await runs().runNow(em(), t.orgId, THIS, { checks: ['flux'], startedBy: 'test' });
    expect(widened.status).toBe('passed');
    expect((widened.capture.tolerances as Record<string, Tolerance>).flux).toMatchObject({ absolute: '10000', percent: null, mode: 'either', source: 'configured' });
    const resolved = await exceptions();
    expect(resolved.find((e) => e.item_key === 'account:4300:USD')).toMatchObject({ status: 'resolved' });
    expect(resolved.filter((e) => e.period === LAST).every((e) => e.status === 'open')).toBe(true);
  }, 180_000);

  it('the SQL tolerance rule agrees with the pure function', async () => {
    const d = fc.tuple(fc.integer({ min: -100_000, max: 100_000 }), fc.integer({ min: 0, max: 99 })).map(([i, f]) => `${i}.${String(f).padStart(2, '0')}`);
    const b = fc.option(fc.tuple(fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: 9 })).map(([i, f]) => `${i}.${f}`), { nil: null });
    const cases = fc.sample(fc.record({ e: d, v: d, t: fc.record({ absolute: b, percent: b, mode: fc.constantFrom('both' as const, 'either' as const) }) }), 300);
    cases.push({ e: '100', v: '8', t: { absolute: '5', percent: '10', mode: 'both' } }, { e: '0', v: '0', t: { absolute: null, percent: null, mode: 'either' } });
    const q = cases.map((c, i) => `select ${i} as i, ${toleranceStatusSql(`${c.e}::numeric`, `${c.v}::numeric`, c.t)} as status`).join(' union all ');
    const rows = await sql<{ i: number; status: string }>(api, q);
    for (const r of rows) expect({ case: cases[r.i], pass: r.status === 'pass' }).toEqual({ case: cases[r.i], pass: withinTolerance(cases[r.i].e, cases[r.i].v, cases[r.i].t) });
  });

  it('HTTP: roles, validation, tenancy, tolerances', async () => {
    const t = await tenant(api, 'Recon http');
    const other = await tenant(api, 'Recon other');
    const auditor = bearer(await t.key('auditor'));
    const support = bearer(await t.key('support'));
    await api.http.post(`/v1/periods/${LAST}/reconciliation-runs`).set(auditor).send({}).expect(403);
    await api.http.post('/v1/reconciliation-tolerances').set(support).send({ check: 'flux', absolute: '1' }).expect(403);
    expect((await api.http.get('/v1/reconciliation-tolerances').set(support).expect(200)).body.data).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ check: 'flux', absolute: '1000', percent: '25', mode: 'either', source: 'default' }),
        expect.objectContaining({ check: 'events_rollups', absolute: '0', percent: null, mode: 'both', source: 'default' }),
      ]),
    );
    expect((await t.post('/v1/periods/2026-13/reconciliation-runs', {})).body.error).toMatchObject({ code: 'invalid_value', field: 'period' });
    expect((await t.post(`/v1/periods/${LAST}/reconciliation-runs`, { checks: ['nope'] })).status).toBe(400);
    expect((await t.post(`/v1/periods/${LAST}/reconciliation-runs`, { checks: ['flux'], extra: 1 })).status).toBe(400);
    expect((await t.post('/v1/reconciliation-tolerances', { check: 'flux', absolute: '-1' })).status).toBe(400);
    expect((await t.post('/v1/reconciliation-tolerances', { check: 'bogus', absolute: '1' })).status).toBe(400);
    const set = await t.post('/v1/reconciliation-tolerances', { check: 'completeness', absolute: '0.5', percent: '1', mode: 'either' }).expect(201);
    expect(set.body).toMatchObject({ check: 'completeness', absolute: '0.5', percent: '1', mode: 'either', source: 'configured' });

    const started = await t.post(`/v1/periods/${LAST}/reconciliation-runs`, { checks: ['flux', 'completeness'] }).expect(202);
    expect(started.body.checks.map((c: { check: string }) => c.check)).toEqual(['completeness', 'flux']);
    const run = await waitForRun(t, LAST, started.body.id);
    expect(run.status).toBe('passed');
    expect(run.capture.tolerances.completeness).toMatchObject({ absolute: '0.5', source: 'configured' });
    const list = await api.http.get(`/v1/periods/${LAST}/reconciliation-runs`).set(auditor).expect(200);
    expect(list.body.data.map((r: { id: string }) => r.id)).toEqual([run.id]);
    // Another organization's run, or the run under another month: 404.
    await other.get(`/v1/periods/${LAST}/reconciliation-runs/${run.id}`).expect(404);
    await other.get(`/v1/periods/${LAST}/reconciliation-runs/${run.id}/results`).expect(404);
    await t.get(`/v1/periods/${THIS}/reconciliation-runs/${run.id}`).expect(404);
    await t.get(`/v1/periods/${LAST}/reconciliation-runs/${run.id}/results?status=bad`).expect(400);
    const audit = await sql(api, `select action from audit_log where organization_id = ? and action like 'reconciliation.%' order by created_at`, [t.orgId]);
    expect(audit.map((a) => a.action)).toEqual(['reconciliation.tolerance.set', 'reconciliation.run.started', 'reconciliation.run.finished']);
  }, 60_000);

  async function waitForRun(t: Tenant, period: string, id: string) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await t.get(`/v1/periods/${period}/reconciliation-runs/${id}`).expect(200);
      if (!['queued', 'running'].includes(r.body.status)) return r.body;
      if (Date.now() > deadline) throw new Error(`run ${id} still ${r.body.status}: ${JSON.stringify(r.body.checks)}`);
      await sleep(200);
    }
  }
});
