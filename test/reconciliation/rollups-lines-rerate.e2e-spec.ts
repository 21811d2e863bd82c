// Check 2 (rollups → invoice lines) re-rates every usage line (SPEC §6.2): the quantity, prices,
// allowance, fractions and rollover its steps used must be what the rating core makes of the
// billed rollups, the pinned plan version and the live allowance grants. A month of a few
// subscriptions (a rollover carried in, keyed prices with graduated tiers, a max meter priced in
// packages, a prorated first period) passes; then lines are rewritten in SQL behind the services'
// back, each by the rating core itself from a wrong input, so its steps and amount agree with each
// other and only the re-rating can tell: each fails with its own problem, the others still pass.
import { EntityManager } from '@mikro-orm/postgresql';
import { PeriodRatingService, usageOf, type RollupSnapshot } from '@closebook/invoicing';
import { ratePeriodInvoice, type PeriodInvoiceInput, type RatedLine } from '@closebook/rating';
import { ReconciliationRunsService, RollupsLinesCheck, ROLLUPS_LINES_INVOICES_PAGE, type ReconciliationRun } from '@closebook/reconciliation';
import { bearer, startApi, type TestApi } from '../helpers/api';
import { DAY, monthStart, rollUp, runPeriodEnd, sendAll, sleep, sql, startWorker, tenant, type InvoiceJson, type Tenant } from '../invoicing/fixtures';

const twoMonthsAgo = monthStart(-2);
const lastMonth = monthStart(-1);
const LAST = lastMonth.toISOString().slice(0, 7);
const at = (month: Date, day: number) => new Date(month.getTime() + (day - 1) * DAY + 3_600_000);

interface ResultRow {
  item_key: string;
  status: string;
  expected: string | null;
  actual: string | null;
  variance: string | null;
  details: { problems: string[]; notes: string[]; differences?: { problem: string; field: string; step?: string; expected: unknown; actual: unknown }[] };
}

describe('rollups → lines re-rates every usage line', () => {
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
  const results = (run: ReconciliationRun) =>
    sql<ResultRow>(api, `select item_key, status, expected::text, actual::text, variance::text, details from reconciliation_results where run_id = ? and check_key = 'rollups_lines' order by item_key`, [run.id]);
  const check = async (t: Tenant) => runs().runNow(em(), t.orgId, LAST, { checks: ['rollups_lines'], startedBy: 'test' });

  async function waitForRun(t: Tenant, id: string) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await t.get(`/v1/periods/${LAST}/reconciliation-runs/${id}`).expect(200);
      if (!['queued', 'running'].includes(r.body.status)) return r.body;
      if (Date.now() > deadline) throw new Error(`run ${id} still ${r.body.status}`);
      await sleep(200);
    }
  }

  async function finalizeAll(t: Tenant) {
    const drafts = (await t.invoices('&status=draft')).sort((a, b) => a.period_start.localeCompare(b.period_start) || (a.kind === 'opening' ? -1 : 1));
    for (const inv of drafts) {
      const r = await t.post(`/v1/invoices/${inv.id}/finalize`, {});
      if (r.status !== 200 && r.status !== 201) throw new Error(`finalize: ${r.status} ${JSON.stringify(r.body)}`);
    }
  }

  /**
   * Rewrites a stored line as the rating core rates it from `change(input)`: the invoice's own stored
   * rating input and billed rollups, altered. The immutability trigger refuses any write to a
   * finalized invoice's lines, so the write runs with `session_replication_role = replica` — set
   * LOCAL, inside this one test transaction only — as a tamperer with database access would.
   */
  async function tamper(inv: InvoiceJson, lineKey: string, change: (input: PeriodInvoiceInput) => PeriodInvoiceInput): Promise<RatedLine> {
    const [{ rating_input }] = await sql<{ rating_input: PeriodInvoiceInput }>(api, 'select rating_input from invoices where id = ?', [inv.id]);
    const snapshot = await sql<RollupSnapshot>(
      api,
      `select distinct rollup_id as id, product_key, price_key, event_count::text as event_count, aggregate::text as aggregate, digest::text as digest
       from invoice_rollups where invoice_id = ? order by product_key, price_key`,
      [inv.id],
    );
    const input = change(JSON.parse(JSON.stringify({ ...rating_input, usage: usageOf(snapshot) })) as PeriodInvoiceInput);
    const line = ratePeriodInvoice(input).lines.find((l) => l.line_key === lineKey);
    if (!line) throw new Error(`the altered rating has no line ${lineKey}`);
    const id = inv.lines.find((l) => l.line_key === lineKey)!.id;
    await em().transactional(async (tx) => {
      await tx.execute('set local session_replication_role = replica');
      await tx.execute(
        `update invoice_lines set quantity = ?, unit_amount = ?, tiers = ?::jsonb, price = ?::jsonb, amount_exact = ?, amount = ?, description = ?, steps = ?::jsonb, meta = ?::jsonb where id = ?`,
        [line.quantity, line.unit_amount, JSON.stringify(line.tiers ?? null), JSON.stringify(line.price ?? null), line.amount_exact, line.amount, line.description, JSON.stringify(line.steps), JSON.stringify(line.meta ?? null), id],
      );
    });
    return line;
  }

  it('a clean month passes; a line rated from a wrong quantity, price, allowance or rollover fails with its problem; a missing line is named', async () => {
    const t = await tenant(api, 'tampered: Rerate');
    await t.product({ key: 'fee', name: 'Plan fee', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.product({ key: 'bandwidth', name: 'Bandwidth', kind: 'metered', unit: 'GB', meter: { event_name: 'cdn.transfer', aggregation: 'sum', property: 'gb' }, price_key_label: 'environment' });
    await t.product({ key: 'storage', name: 'Storage', kind: 'metered', unit: 'GB', meter: { event_name: 'storage.used', aggregation: 'max', property: 'gb' } });
    await t.plan('team', [
      { product_key: 'fee', price: { model: 'flat', amount: '20' } },
      { product_key: 'api_calls', allowance: '1000', rollover_enabled: true, rollover_cap: '500', price: { model: 'per_unit', unit_amount: '0.01' } },
      {
        product_key: 'bandwidth',
        keyed_prices: [
          { key: 'prod', price: { model: 'per_unit', unit_amount: '0.5' }, allowance: '10' },
          { key: '*', price: { model: 'graduated', tiers: [{ up_to: '100', unit_amount: '0.1' }, { up_to: null, unit_amount: '0.05', flat_amount: '1' }] } },
        ],
      },
      { product_key: 'storage', allowance: '5', price: { model: 'package', package_size: '10', package_amount: '3' } },
    ]);
    // c1 from two months ago: 600 of 1,000 calls then, so 400 roll over into last month (cap 500), drawn first.
    const c1 = await t.subscribe('c1', 'team', { started_at: twoMonthsAgo });
    const c2 = await t.subscribe('c2', 'team', { started_at: lastMonth });
    // c3 starts on the 11th: its first period and allowance are prorated.
    const c3 = await t.subscribe('c3', 'team', { started_at: new Date(lastMonth.getTime() + 10 * DAY) });
    const c4 = await t.subscribe('c4', 'team', { started_at: lastMonth });
    const bw = (customer: string, gb: number, environment: string, day: number) => t.calls(customer, 'cdn.transfer', 1, at(lastMonth, day), { gb, environment });
    await sendAll(t, [
      ...t.calls('c1', 'api.call', 600, at(twoMonthsAgo, 5)),
      ...t.calls('c1', 'api.call', 1_800, at(lastMonth, 5)),
      ...t.calls('c2', 'api.call', 1_500, at(lastMonth, 3)),
      ...bw('c2', 12, 'prod', 4),
      ...bw('c2', 18, 'prod', 5),
      ...bw('c2', 150, 'preview', 6),
      ...t.calls('c2', 'storage.used', 1, at(lastMonth, 7), { gb: 23 }),
      ...t.calls('c2', 'storage.used', 1, at(lastMonth, 8), { gb: 9 }),
      ...t.calls('c3', 'api.call', 900, at(lastMonth, 15)),
      ...t.calls('c4', 'api.call', 2_000, at(lastMonth, 3)),
    ]);
    await rollUp(api, t.orgId);
    await runPeriodEnd(api, w, t.orgId);
    await finalizeAll(t);
    const inv = async (s: { subscriptionId: string }, start = lastMonth) => t.periodInvoice(s.subscriptionId, start);
    const [i1, i2, i3, i4] = [await inv(c1), await inv(c2), await inv(c3, new Date(lastMonth.getTime() + 10 * DAY)), await inv(c4)];
    const line = (i: InvoiceJson, key: string) => {
      const l = i.lines.find((x) => x.line_key === key);
      if (!l) throw new Error(`no line ${key} on ${i.id}: ${i.lines.map((x) => x.line_key).join(', ')}`);
      return l;
    };
    // What was billed: c1 drew its 400 rolled-over calls first; c2's keyed, tiered and packaged lines; c3's prorated allowance.
    expect(line(i1, 'usage_overage:api_calls:-')).toMatchObject({ quantity: '400', amount: { amount: '4.00' } });
    expect(line(i2, 'usage_overage:bandwidth:prod')).toMatchObject({ quantity: '20', amount: { amount: '10.00' } });
    expect(line(i2, 'usage_overage:bandwidth:preview')).toMatchObject({ quantity: '150', amount: { amount: '13.50' } });
    expect(line(i2, 'usage_overage:storage:-')).toMatchObject({ quantity: '18', amount: { amount: '6.00' } });
    expect(line(i4, 'usage_overage:api_calls:-')).toMatchObject({ quantity: '1000', amount: { amount: '10.00' } });
    expect(Number(line(i3, 'usage_included:api_calls:-').quantity)).toBeLessThan(900);

    // Clean: every usage line passes, re-rated (expected = the re-rated amount = the stored one).
    const clean = await check(t);
    expect(clean.status).toBe('passed');
    const cleanRows = await results(clean);
    const usageLines = [i1, i2, i3, i4].flatMap((i) => i.lines.filter((l) => l.type === 'usage_included' || l.type === 'usage_overage'));
    expect(cleanRows.filter((r) => r.item_key.startsWith('line:')).map((r) => r.item_key).sort()).toEqual(usageLines.map((l) => `line:${l.id}`).sort());
    expect(cleanRows.every((r) => r.status === 'pass' && r.details.problems.length === 0 && r.details.differences?.length === 0)).toBe(true);
    for (const l of usageLines) expect(cleanRows.find((r) => r.item_key === `line:${l.id}`)).toMatchObject({ expected: l.amount.amount, actual: l.amount.amount });
    expect((clean.capture as { checks: Record<string, { inputs: { rerated_invoices: number } }> }).checks.rollups_lines.inputs.rerated_invoices).toBe(4);
    // The worker re-rates the same way (the BullMQ flow's child runs the check there).
    const started = await api.http.post(`/v1/periods/${LAST}/reconciliation-runs`).set(bearer(await t.key('finance'))).send({ checks: ['rollups_lines'] }).expect(202);
    const viaFlow = await waitForRun(t, started.body.id);
    expect(viaFlow.checks).toEqual([expect.objectContaining({ check: 'rollups_lines', status: 'passed' })]);
    expect(viaFlow.capture.checks.rollups_lines.inputs.rerated_invoices).toBe(4);
    // The builder is read-only: it rebuilt what the period-end rating rated (the stored rating input's terms).
    const billed = await api.app.get(PeriodRatingService).billedUsageInputs(em(), [i2.id, i2.id, i1.id]);
    expect([...billed.keys()].sort()).toEqual([i1.id, i2.id].sort());
    const [{ rating_input: stored }] = await sql<{ rating_input: PeriodInvoiceInput }>(api, 'select rating_input from invoices where id = ?', [i1.id]);
    expect(billed.get(i1.id)!.input).toMatchObject({ segments: stored.segments, grants: stored.grants, period: stored.period, usage: [{ product_key: 'api_calls', price_key: null, quantity: '1800' }] });

    // (a) c2's call overage rated from 1,700 calls instead of the billed 1,500: steps and amount agree (7.00).
    const a = await tamper(i2, 'usage_overage:api_calls:-', (input) => ({
      ...input,
      usage: input.usage!.map((u) => (u.product_key === 'api_calls' ? { ...u, quantity: '1700' } : u)),
    }));
    expect(a).toMatchObject({ quantity: '700', amount: '7.00' });
    // (b) c4's call overage at $0.02 instead of the pinned $0.01, consistently applied (20.00).
    const b = await tamper(i4, 'usage_overage:api_calls:-', (input) => ({
      ...input,
      segments: input.segments.map((s) => ({ ...s, plan: { ...s.plan, products: s.plan.products.map((p) => (p.product_key === 'api_calls' ? { ...p, price: { model: 'per_unit' as const, unit_amount: '0.02' } } : p)) } })),
    }));
    expect(b).toMatchObject({ quantity: '1000', amount: '20.00' });
    // (c) c3's call overage with an allowance of 1,200 (the pinned version says 1,000).
    await tamper(i3, 'usage_overage:api_calls:-', (input) => ({
      ...input,
      segments: input.segments.map((s) => ({ ...s, plan: { ...s.plan, products: s.plan.products.map((p) => (p.product_key === 'api_calls' ? { ...p, allowance: '1200' } : p)) } })),
    }));
    // (d) c1's call overage drawing a rollover of 300 (the ledger's live grant carries 400).
    const d = await tamper(i1, 'usage_overage:api_calls:-', (input) => ({ ...input, grants: input.grants!.map((g) => ({ ...g, quantity: '300' })) }));
    expect(d).toMatchObject({ quantity: '500', amount: '5.00' });
    // (e) c2's prod bandwidth overage line deleted (with its rollup links): its included line still cites the rollup.
    const gone = line(i2, 'usage_overage:bandwidth:prod');
    await em().transactional(async (tx) => {
      await tx.execute('set local session_replication_role = replica');
      await tx.execute('delete from invoice_rollups where invoice_line_id = ?', [gone.id]);
      await tx.execute('delete from invoice_lines where id = ?', [gone.id]);
    });

    const broken = await check(t);
    expect(broken.status).toBe('failed');
    const rows = await results(broken);
    const item = (l: { id: string }) => rows.find((r) => r.item_key === `line:${l.id}`)!;
    const diff = (r: ResultRow, problem: string) => r.details.differences!.filter((x) => x.problem === problem);

    // (a) the quantity its steps used is not the billed rollup's aggregate; the rest of its steps are right.
    const ra = item(line(i2, 'usage_overage:api_calls:-'));
    expect(ra).toMatchObject({ status: 'fail', expected: '5.00', actual: '7.00', variance: '2.00' });
    expect(ra.details.problems).toEqual(['quantity_mismatch']);
    expect(diff(ra, 'quantity_mismatch')).toEqual([
      { problem: 'quantity_mismatch', field: 'usage', step: 'usage', expected: '1500', actual: '1700' },
      { problem: 'quantity_mismatch', field: 'quantity', expected: '500', actual: '700' },
    ]);
    // (b) the price: the model snapshot, the unit amount and the pricing step's literal.
    const rb = item(line(i4, 'usage_overage:api_calls:-'));
    expect(rb).toMatchObject({ status: 'fail', expected: '10.00', actual: '20.00' });
    expect(rb.details.problems).toEqual(['price_mismatch']);
    expect(diff(rb, 'price_mismatch')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: 'unit_amount', step: 'amount_exact', expected: '0.01', actual: '0.02' }),
        expect.objectContaining({ field: 'price', expected: { model: 'per_unit', unit_amount: '0.01' }, actual: { model: 'per_unit', unit_amount: '0.02' } }),
      ]),
    );
    // (c) the allowance of the (prorated) allowance step; the overage quantity follows from it.
    const rc = item(line(i3, 'usage_overage:api_calls:-'));
    expect(rc.status).toBe('fail');
    expect(rc.details.problems).toContain('allowance_mismatch');
    expect(rc.details.problems).not.toContain('proration_mismatch');
    expect(diff(rc, 'allowance_mismatch')).toEqual([expect.objectContaining({ field: 'allowance', expected: '1000', actual: '1200' })]);
    // (d) the rollover drawn first is not the ledger's live grant.
    const rd = item(line(i1, 'usage_overage:api_calls:-'));
    expect(rd).toMatchObject({ status: 'fail', expected: '4.00', actual: '5.00' });
    expect(rd.details.problems).toContain('rollover_mismatch');
    expect(diff(rd, 'rollover_mismatch')).toEqual([{ problem: 'rollover_mismatch', field: 'rollover_available', expected: ['400'], actual: ['300'] }]);
    // (e) the re-rating bills a line the invoice no longer has.
    expect(rows.find((r) => r.item_key === `missing_line:${i2.id}:usage_overage:bandwidth:prod`)).toMatchObject({
      status: 'fail',
      expected: '10.00',
      actual: '0.00',
      variance: '-10.00',
      details: expect.objectContaining({ problems: ['line_missing'] }),
    });

    // Exactly those fail; every untampered line (the same invoices' other lines included) still passes.
    const tampered = new Set([line(i2, 'usage_overage:api_calls:-'), line(i4, 'usage_overage:api_calls:-'), line(i3, 'usage_overage:api_calls:-'), line(i1, 'usage_overage:api_calls:-')].map((l) => `line:${l.id}`));
    expect(rows.filter((r) => r.status === 'fail').map((r) => r.item_key).sort()).toEqual([...tampered, `missing_line:${i2.id}:usage_overage:bandwidth:prod`].sort());
    for (const l of usageLines.filter((x) => !tampered.has(`line:${x.id}`) && x.id !== gone.id)) {
      expect(item(l)).toMatchObject({ status: 'pass', expected: l.amount.amount, actual: l.amount.amount, details: expect.objectContaining({ problems: [], differences: [] }) });
    }

    // Paging changes nothing: one invoice a page writes the same results.
    const lines = api.app.get(RollupsLinesCheck);
    lines.invoicesPerPage = 1;
    const paged = await check(t).finally(() => (lines.invoicesPerPage = ROLLUPS_LINES_INVOICES_PAGE));
    const view = (rs: ResultRow[]) => rs.map((r) => [r.item_key, r.status, r.expected, r.actual, r.details]);
    expect(view(await results(paged))).toEqual(view(rows));
  }, 180_000);
});
