// An invoice's life over HTTP, with the worker in-process: rating exactly once however often the
// job runs, late events (a draft is re-rated; a finalized invoice is not, late usage is recorded),
// finalizing once, database immutability, credit notes, payments, the upcoming invoice, roles.
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { InvoicingEvents, InvoicingJobs, LateUsageService, PeriodRatingService, type Invoice, type InvoicingPostingHook } from '@closebook/invoicing';
import { UnprocessableError } from '@closebook/platform';
import { Money } from '@closebook/money';
import { replayLine, type Step } from '@closebook/rating';
import { bearer, startApi, type TestApi } from '../helpers/api';
import { DAY, monthStart, rollUp, runPeriodEnd, sendAll, sql, startWorker, tenant, type InvoiceJson, type Tenant } from './fixtures';

const lastMonth = monthStart(-1);
const thisMonth = monthStart(0);
const inLastMonth = (day: number) => new Date(lastMonth.getTime() + (day - 1) * DAY + 3_600_000);

describe('invoice lifecycle', () => {
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

  async function starter(name: string, taxRate?: string, startedAt = lastMonth) {
    const t = await tenant(api, name);
    await t.product({ key: 'starter_fee', name: 'Starter plan', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('starter', [
      { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    const s = await t.subscribe('acme', 'starter', { started_at: startedAt, ...(taxRate ? { tax_rate: taxRate } : {}) });
    return { t, s };
  }

  const overage = (inv: InvoiceJson) => inv.lines.find((l) => l.type === 'usage_overage');

  it('a retried or duplicated rating job produces exactly one invoice', async () => {
    const { t, s } = await starter('Retry');
    await sendAll(t, t.calls('acme', 'api.call', 100, inLastMonth(3)));
    const [bp] = await sql<{ id: string }>(api, 'select id from billing_periods where subscription_id = ? and period_start = ?', [s.subscriptionId, lastMonth.toISOString()]);
    const rating = api.app.get(PeriodRatingService);
    const jobs = api.app.get(InvoicingJobs);
    const payload = { organization_id: t.orgId, period_end: thisMonth.toISOString().slice(0, 10), billing_period_ids: [bp.id] };
    // Concurrent ratings, the flow's child handler twice, and the period-end job twice through BullMQ.
    const results = await Promise.all([rating.ratePeriod(em(), bp.id), rating.ratePeriod(em(), bp.id), jobs.rateBatch(payload), jobs.rateBatch(payload)]);
    await Promise.all([runPeriodEnd(api, w, t.orgId), runPeriodEnd(api, w, t.orgId)]);
    const ids = new Set(results.slice(0, 2).map((r) => (r as { invoice: Invoice }).invoice.id));
    expect(ids.size).toBe(1);
    const invoices = await sql<{ id: string }>(api, "select id from invoices where subscription_id = ? and kind = 'period'", [s.subscriptionId]);
    expect(invoices.map((i) => i.id)).toEqual([...ids]);
    expect(await sql(api, "select id from audit_log where resource_id = ? and action = 'invoice.created'", [invoices[0].id])).toHaveLength(1);
    // The database is the last word: a second period invoice for the same period is refused.
    await expect(
      sql(api, `insert into invoices (id, organization_id, customer_id, subscription_id, kind, billing_period_id, source_key, period_start, period_end, issue_date, currency, subtotal, tax_amount, total, finalize_after, content_hash, rated_at)
                select ?, organization_id, customer_id, subscription_id, kind, billing_period_id, 'dup', period_start, period_end, issue_date, currency, 0, 0, 0, now(), 'x', now() from invoices where id = ?`, [randomUUID(), invoices[0].id]),
    ).rejects.toThrow(/invoices_one_period_invoice/);
  });

  it('late events re-rate a draft; after finalization they are recorded as late usage and the invoice never changes', async () => {
    const { t, s } = await starter('Late events', '0.2');
    await sendAll(t, t.calls('acme', 'api.call', 12_000, inLastMonth(5)));
    await runPeriodEnd(api, w, t.orgId);
    const draft = await t.periodInvoice(s.subscriptionId, lastMonth);
    expect(overage(draft)).toMatchObject({ quantity: '2000', amount: { amount: '10.00', currency: 'USD' } });

    // 1,000 late events for the draft's period: the watch job re-rates it (same invoice, same line ids).
    await sendAll(t, t.calls('acme', 'api.call', 1_000, inLastMonth(20)));
    await rollUp(api, t.orgId);
    // The worker's own watch job runs too and may hold the draft while this call looks at it: keep
    // watching until one of them has re-rated it, then check that it was re-rated exactly once.
    let rerated = await t.invoice(draft.id);
    for (let i = 0; i < 50 && rerated.rating_count < 2; i++) {
      await api.app.get(LateUsageService).watch(em(), new Date(), t.orgId);
      rerated = await t.invoice(draft.id);
      if (rerated.rating_count < 2) await new Promise((r) => setTimeout(r, 100));
    }
    await api.app.get(LateUsageService).watch(em(), new Date(), t.orgId);
    rerated = await t.invoice(draft.id);
    expect(rerated).toMatchObject({ status: 'draft', rating_count: 2 });
    expect(overage(rerated)).toMatchObject({ id: overage(draft)!.id, quantity: '3000', amount: { amount: '15.00' } });
    expect(overage(rerated)!.rollups).toEqual([expect.objectContaining({ event_count: '13000' })]);
    expect(rerated.content_hash).not.toBe(draft.content_hash);

    // 500 more, then finalize: finalization re-rates first. Finalizing twice is one transition.
    await sendAll(t, t.calls('acme', 'api.call', 500, inLastMonth(21)));
    const first = await t.post(`/v1/invoices/${draft.id}/finalize`, {}).expect(201);
    const second = await t.post(`/v1/invoices/${draft.id}/finalize`, {}).expect(201);
    expect([first.body.transitioned, second.body.transitioned]).toEqual([true, false]);
    expect(overage(first.body)).toMatchObject({ quantity: '3500', amount: { amount: '17.50' } });
    // (49.00 + 17.50) × 1.2 = 79.80.
    expect([first.body.subtotal.amount, first.body.tax.amount, first.body.total.amount]).toEqual(['66.50', '13.30', '79.80']);
    expect(second.body).toMatchObject({ status: 'finalized', number: first.body.number, content_hash: first.body.content_hash });
    expect(await sql(api, "select id from audit_log where resource_id = ? and action = 'invoice.finalized'", [draft.id])).toHaveLength(1);
    expect(await sql(api, "select id from outbox_messages where organization_id = ? and type = 'invoice.finalized' and payload->>'invoice_id' = ?", [t.orgId, draft.id])).toHaveLength(1);

    // 2,000 events after finalization: stored, never billed silently.
    const before = (await t.get(`/v1/invoices/${draft.id}`).expect(200)).body;
    await sendAll(t, t.calls('acme', 'api.call', 2_000, inLastMonth(22)));
    await rollUp(api, t.orgId);
    await api.app.get(LateUsageService).watch(em(), new Date(), t.orgId);
    // Observing the same rollup state again records nothing more.
    expect(await api.app.get(LateUsageService).watch(em(), new Date(), t.orgId)).toMatchObject({ late_usage: 0 });
    const late = (await t.get(`/v1/late-usage?invoice=${draft.id}`).expect(200)).body.data;
    // The period re-rated with the invoice's own inputs: 5,500 over instead of 3,500, 2,000 × $0.005 = 10.00.
    expect(late).toEqual([
      expect.objectContaining({ product_key: 'api_calls', price_key: null, billed_quantity: '13500', previous_quantity: '13500', quantity: '15500', quantity_delta: '2000', amount: { amount: '10.00', currency: 'USD' }, event_count: '15500', status: 'open' }),
    ]);
    expect((await t.get(`/v1/invoices/${draft.id}`).expect(200)).body).toEqual(before);

    // The database refuses changes to a finalized invoice and its lines; the service refuses first.
    const line = overage(first.body)!;
    await expect(sql(api, 'update invoice_lines set amount = 0 where id = ?', [line.id])).rejects.toThrow(/immutable/);
    await expect(sql(api, 'delete from invoice_lines where id = ?', [line.id])).rejects.toThrow(/immutable/);
    await expect(sql(api, 'update invoices set total = 0 where id = ?', [draft.id])).rejects.toThrow(/immutable/);
    await expect(sql(api, 'delete from invoices where id = ?', [draft.id])).rejects.toThrow(/immutable/);
    await expect(sql(api, 'update invoice_rollups set event_count = 1 where invoice_id = ?', [draft.id])).rejects.toThrow(/immutable/);
    await expect(
      api.orm.em.fork().transactional(async (tx) => api.app.get(PeriodRatingService).rerate(tx as EntityManager, (await tx.findOneOrFail('Invoice', { id: draft.id })) as Invoice, new Date())),
    ).rejects.toMatchObject({ status: 422, code: 'invoice_finalized' });
  });

  it('credit notes against finalized lines, never more than billed; payments until paid', async () => {
    const { t, s } = await starter('Credit notes', '0.2');
    await sendAll(t, t.calls('acme', 'api.call', 13_000, inLastMonth(5)));
    await runPeriodEnd(api, w, t.orgId);
    const [opening] = await t.invoices(`&subscription=${s.subscriptionId}&kind=opening`);
    const inv = await t.periodInvoice(s.subscriptionId, lastMonth);
    const over = overage(inv)!;
    // A draft is changed by re-rating, not credited; nor paid.
    expect((await t.post(`/v1/invoices/${inv.id}/credit-notes`, { reason: 'x', lines: [{ invoice_line_id: over.id, amount: '1.00' }] }).expect(422)).body.error.code).toBe('invoice_not_finalized');
    expect((await t.post('/v1/payments', { invoice_id: inv.id, amount: '1.00', received_at: new Date().toISOString(), reference: 'r0' }).expect(422)).body.error.code).toBe('invoice_not_finalized');
    const fin = (await t.post(`/v1/invoices/${inv.id}/finalize`, {}).expect(201)).body as InvoiceJson;
    // (49.00 + 3,000 × 0.005 = 15.00) × 1.2 = 76.80.
    expect(fin.total.amount).toBe('76.80');

    const byAmount = await t.post(`/v1/invoices/${inv.id}/credit-notes`, { reason: 'SLA breach', lines: [{ invoice_line_id: over.id, amount: '5.00' }] }).expect(201);
    // 5.00 + 20% tax = 6.00.
    expect(byAmount.body).toMatchObject({ number: expect.stringMatching(/^CN-/), subtotal: { amount: '5.00' }, tax: { amount: '1.00' }, total: { amount: '6.00' } });
    const byQuantity = await t.post(`/v1/invoices/${inv.id}/credit-notes`, { reason: 'Duplicate calls', lines: [{ invoice_line_id: over.id, quantity: '1000' }] }).expect(201);
    // 1,000 of the 3,000 billed: a third of 15.00.
    expect(byQuantity.body.lines).toEqual([expect.objectContaining({ quantity: '1000', amount: { amount: '5.00', currency: 'USD' } })]);
    const tooMuch = await t.post(`/v1/invoices/${inv.id}/credit-notes`, { reason: 'x', lines: [{ invoice_line_id: over.id, amount: '5.01' }] }).expect(422);
    expect(tooMuch.body.error).toMatchObject({ code: 'credit_exceeds_billed', field: 'lines[0].amount', details: { remaining: { amount: '5.00', currency: 'USD' } } });
    const included = inv.lines.find((l) => l.type === 'usage_included')!;
    expect((await t.post(`/v1/invoices/${inv.id}/credit-notes`, { reason: 'x', lines: [{ invoice_line_id: included.id, amount: '1' }] }).expect(422)).body.error.code).toBe('line_not_creditable');
    expect((await t.post(`/v1/invoices/${inv.id}/credit-notes`, { lines: [{ invoice_line_id: over.id, amount: '1' }] }).expect(400)).body.error.field).toBe('reason');
    expect((await t.post(`/v1/invoices/${inv.id}/credit-notes`, { reason: 'x', lines: [{ invoice_line_id: over.id, amount: '1', quantity: '1' }] }).expect(400)).body.error.field).toBe('lines[0].amount');
    expect(await sql(api, "select id from outbox_messages where organization_id = ? and type = 'credit_note.created'", [t.orgId])).toHaveLength(2);
    await expect(sql(api, 'update credit_notes set total = 0 where invoice_id = ?', [inv.id])).rejects.toThrow(/immutable/);

    // Due: 76.80 − 12.00 credited = 64.80.
    const now = new Date().toISOString();
    const paid1 = await t.post('/v1/payments', { invoice_id: inv.id, amount: '30.00', received_at: now, reference: 'wire-1' }).expect(201);
    expect(paid1.body.invoice.status).toBe('finalized');
    expect((await t.post('/v1/payments', { invoice_id: inv.id, amount: '40.00', received_at: now, reference: 'wire-2' }).expect(422)).body.error).toMatchObject({
      code: 'overpayment',
      details: { amount_due: { amount: '34.80', currency: 'USD' } },
    });
    expect((await t.post('/v1/payments', { invoice_id: inv.id, amount: '1.00', received_at: now, reference: 'wire-1' }).expect(409)).body.error.code).toBe('payment_reference_taken');
    expect((await t.post('/v1/payments', { invoice_id: inv.id, amount: '1.001', received_at: now, reference: 'wire-3' }).expect(400)).body.error.field).toBe('amount');
    const paid2 = await t.post('/v1/payments', { invoice_id: inv.id, amount: '34.80', received_at: now, reference: 'wire-2' }).expect(201);
    expect(paid2.body.invoice).toMatchObject({ status: 'paid', paid_at: now });
    const after = await t.invoice(inv.id);
    expect([after.amount_due.amount, (after as unknown as { amount_paid: { amount: string } }).amount_paid.amount]).toEqual(['0.00', '64.80']);
    expect((await t.post('/v1/payments', { invoice_id: inv.id, amount: '1.00', received_at: now, reference: 'wire-9' }).expect(422)).body.error.code).toBe('invoice_paid');

    // The only updates a finalized invoice takes are its status moves.
    await t.post(`/v1/invoices/${opening.id}/finalize`, {}).expect(201);
    await sql(api, "update invoices set status = 'void', voided_at = now() where id = ?", [opening.id]);
    await expect(sql(api, "update invoices set status = 'finalized', voided_at = null where id = ?", [opening.id])).rejects.toThrow(/immutable/);

    // Lists filter by period, customer and status.
    const list = (await t.get(`/v1/invoices?period=${lastMonth.toISOString().slice(0, 7)}&customer=acme&status=paid`).expect(200)).body.data;
    expect(list.map((i: InvoiceJson) => i.id)).toEqual([inv.id]);
  });

  it('the upcoming invoice is the pipeline computation on live usage, written nowhere', async () => {
    // Started this month: no period has ended, so no period-end run can write an invoice meanwhile.
    const { t, s } = await starter('Upcoming', undefined, thisMonth);
    await sendAll(t, t.calls('acme', 'api.call', 10_500, new Date(Math.max(thisMonth.getTime(), Date.now() - 3_600_000))));
    const before = await sql(api, 'select id from invoices where subscription_id = ?', [s.subscriptionId]);
    const up = (await t.get(`/v1/subscriptions/${s.subscriptionId}/upcoming-invoice`).expect(200)).body;
    expect(up).toMatchObject({ estimate: true, period: { start: thisMonth.toISOString(), end: monthStart(1).toISOString() } });
    expect(up.invoice.lines.map((l: { type: string; amount: { amount: string } }) => `${l.type} ${l.amount.amount}`)).toEqual(['base_fee 49.00', 'usage_included 0.00', 'usage_overage 2.50']);
    expect(up.invoice.total.amount).toBe('51.50');
    expect(await sql(api, 'select id from invoices where subscription_id = ?', [s.subscriptionId])).toEqual(before);
  });

  it('reads for admin, finance, support and auditor; writes for finance; 404 across organizations', async () => {
    const { t, s } = await starter('Roles');
    const [opening] = await t.invoices(`&subscription=${s.subscriptionId}`);
    for (const role of ['finance', 'support', 'auditor']) {
      const key = await t.key(role);
      await api.http.get(`/v1/invoices/${opening.id}`).set(bearer(key)).expect(200);
      await api.http.get('/v1/invoices').set(bearer(key)).expect(200);
    }
    const ingest = await t.key('ingest');
    await api.http.get(`/v1/invoices/${opening.id}`).set(bearer(ingest)).expect(403);
    for (const role of ['support', 'auditor']) {
      const key = await t.key(role);
      await api.http.post(`/v1/invoices/${opening.id}/finalize`).set(bearer(key)).send({}).expect(403);
      await api.http.post(`/v1/subscriptions/${s.subscriptionId}/transition-plan`).set(bearer(key)).send({ plan_key: 'starter' }).expect(403);
    }
    const other = await tenant(api, 'Other');
    await other.get(`/v1/invoices/${opening.id}`).expect(404);
    await other.post(`/v1/invoices/${opening.id}/finalize`, {}).expect(404);
    await other.get(`/v1/subscriptions/${s.subscriptionId}/upcoming-invoice`).expect(404);
    await other.get('/v1/invoices/not-a-uuid').expect(404);
    expect((await t.get('/v1/invoices?status=late').expect(400)).body.error.field).toBe('status');
  });

  it('on-demand charges are validated and listed; cancel at period end is scheduled and can be canceled', async () => {
    const { t, s } = await starter('Charges');
    await t.product({ key: 'setup', name: 'Setup', kind: 'one_time' });
    expect((await t.post(`/v1/subscriptions/${s.subscriptionId}/charges`, { description: 'x', quantity: 'abc', unit_amount: '1' }).expect(400)).body.error.field).toBe('quantity');
    expect((await t.post(`/v1/subscriptions/${s.subscriptionId}/charges`, { description: 'x', quantity: '1', unit_amount: '1', date: '2020-01-01T00:00:00Z' }).expect(422)).body.error.code).toBe('date_before_start');
    expect((await t.post(`/v1/subscriptions/${s.subscriptionId}/charges`, { description: 'x', quantity: '1', unit_amount: '1', product_key: 'api_calls' }).expect(422)).body.error.code).toBe('not_a_one_time_product');
    await t.post(`/v1/subscriptions/${s.subscriptionId}/charges`, { description: 'Onboarding', quantity: '3', unit_amount: '150', product_key: 'setup' }).expect(201);
    expect((await t.get(`/v1/subscriptions/${s.subscriptionId}/charges`).expect(200)).body.data).toEqual([expect.objectContaining({ description: 'Onboarding', quantity: '3', unit_amount: '150' })]);
    // It waits for this period's invoice.
    const up = (await t.get(`/v1/subscriptions/${s.subscriptionId}/upcoming-invoice`).expect(200)).body;
    expect(up.invoice.lines.find((l: { type: string }) => l.type === 'on_demand')).toMatchObject({ amount: { amount: '450.00' } });

    const canceled = await t.post(`/v1/subscriptions/${s.subscriptionId}/cancel`, { at: 'period_end' }).expect(201);
    expect(canceled.body.change).toMatchObject({ kind: 'cancel', status: 'scheduled' });
    expect(canceled.body.subscription.ends_at).toBe(monthStart(1).toISOString());
    expect(canceled.body.subscription.periods.at(-1).period_end).toBe(monthStart(1).toISOString());
    expect(canceled.body.invoice).toBeNull();
    expect((await t.post(`/v1/subscriptions/${s.subscriptionId}/cancel`, { at: 'period_end' }).expect(422)).body.error.code).toBe('cancellation_scheduled');
    // The current period invoice would not renew.
    const last = (await t.get(`/v1/subscriptions/${s.subscriptionId}/upcoming-invoice`).expect(200)).body;
    expect(last.invoice.lines.filter((l: { type: string }) => l.type === 'base_fee')).toHaveLength(0);

    const undo = await t.post(`/v1/subscriptions/${s.subscriptionId}/scheduled-changes/${canceled.body.change.id}/cancel`, {}).expect(201);
    expect(undo.body.change).toMatchObject({ status: 'canceled' });
    expect(undo.body.subscription).toMatchObject({ ends_at: null, scheduled_changes: [] });
    expect(undo.body.subscription.periods.at(-1).period_start).toBe(monthStart(1).toISOString());
    await t.post(`/v1/subscriptions/${s.subscriptionId}/scheduled-changes/${randomUUID()}/cancel`, {}).expect(404);
  });

  it('drafts past their draft window are finalized by the scheduled job, oldest period first', async () => {
    const t = await tenant(api, 'Draft window');
    await sql(api, 'update organizations set draft_window_minutes = 0 where id = ?', [t.orgId]);
    await t.product({ key: 'fee', name: 'Fee', kind: 'recurring' });
    await t.plan('flat', [{ product_key: 'fee', price: { model: 'flat', amount: '12' } }]);
    const s = await t.subscribe('acme', 'flat', { started_at: monthStart(-2) });
    await runPeriodEnd(api, w, t.orgId);
    await api.app.get(InvoicingJobs).finalizeDue();
    const all = await t.invoices(`&subscription=${s.subscriptionId}`);
    expect(all.map((i) => `${i.kind} ${i.status}`).sort()).toEqual(['opening finalized', 'period finalized', 'period finalized']);
    // Period invoices are finalized in period order (an earlier draft blocks a later one), so their numbers are too.
    const periods = all.filter((i) => i.kind === 'period').sort((a, b) => a.period_start.localeCompare(b.period_start));
    expect(periods[0].number! < periods[1].number!).toBe(true);
  });

  it('month-end finalization in one call: oldest period first per subscription, numbers in order, a failure stops only its subscription', async () => {
    const t = await tenant(api, 'Bulk finalize');
    await t.product({ key: 'fee', name: 'Fee', kind: 'recurring' });
    await t.plan('flat', [{ product_key: 'fee', price: { model: 'flat', amount: '12' } }]);
    const subs = [];
    for (const c of ['a', 'b', 'c']) subs.push(await t.subscribe(c, 'flat', { started_at: monthStart(-2) }));
    await runPeriodEnd(api, w, t.orgId);
    const drafts = async () => (await t.invoices('&status=draft')).length;
    expect(await drafts()).toBe(9); // per subscription: opening, and the periods of two months ago and last month
    // Bad input changes nothing.
    await t.post('/v1/invoices/finalize', { limit: 0 }).expect(400);
    await t.post('/v1/invoices/finalize', { through: 'yesterday' }).expect(400);
    await t.post('/v1/invoices/finalize', { extra: true }).expect(400);
    expect(await drafts()).toBe(9);
    // Support cannot; finance can.
    const support = (await t.post('/v1/api-keys', { role: 'support', name: 'support' }).expect(201)).body.api_key as string;
    await api.http.post('/v1/invoices/finalize').set(bearer(support)).send({}).expect(403);

    // Through the end of two months ago: each subscription's opening invoice and first period, two per call.
    const through = monthStart(-1).toISOString();
    const first = (await t.post('/v1/invoices/finalize', { through, limit: 2 }).expect(200)).body;
    expect(first).toEqual({ finalized: 2, unchanged: 0, failed: [], remaining: 4 });
    // One draft is refused (whatever the reason): the others are finalized, its subscription's later draft waits.
    const [refused] = await sql<{ id: string; subscription_id: string }>(
      api,
      "select id, subscription_id from invoices where organization_id = ? and status = 'draft' and kind = 'opening' order by subscription_id limit 1",
      [t.orgId],
    );
    // A posting hook refusing it (inside the transition's transaction): its chunk rolls back and is
    // finalized again one invoice at a time, so only that draft fails.
    const refuse: InvoicingPostingHook = {
      async invoiceFinalized(_tx, invoice) {
        if (invoice.id === refused.id) throw new UnprocessableError('refused_by_test', 'refused by the test');
      },
    };
    const events = api.app.get(InvoicingEvents);
    events.register(refuse);
    try {
      const second = (await t.post('/v1/invoices/finalize', { through }).expect(200)).body;
      expect(second).toEqual({ finalized: 2, unchanged: 0, failed: [{ invoice_id: refused.id, code: 'refused_by_test', message: 'refused by the test' }], remaining: 2 });
      expect((await t.invoices(`&subscription=${refused.subscription_id}&status=draft`)).length).toBe(3);
    } finally {
      events.unregister(refuse);
    }
    // Then everything through now, in one call.
    const all = (await t.post('/v1/invoices/finalize', {}).expect(200)).body;
    expect(all).toEqual({ finalized: 5, unchanged: 0, failed: [], remaining: 0 });
    for (const s of subs) {
      const invs = (await t.invoices(`&subscription=${s.subscriptionId}`)).filter((i) => i.status === 'finalized');
      const periods = invs.filter((i) => i.kind === 'period').sort((a, b) => a.period_start.localeCompare(b.period_start));
      for (let i = 1; i < periods.length; i++) expect(periods[i - 1].number! < periods[i].number!).toBe(true);
    }
    const numbers = (await sql<{ number: string }>(api, "select number from invoices where organization_id = ? and number is not null order by number", [t.orgId])).map((r) => r.number);
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(numbers[numbers.length - 1]).toBe(`INV-${String(numbers.length).padStart(6, '0')}`);
  });

  it('every stored line replays from its own steps, and every invoice adds up (all invoices of this run)', async () => {
    // Except those a reconciliation test tampered with in SQL on purpose (organizations named "tampered: …").
    const lines = await sql<{ invoice_id: string; steps: Step[]; amount: string; amount_exact: string; currency: string }>(
      api,
      `select l.invoice_id, l.steps, l.amount::text as amount, l.amount_exact::text as amount_exact, l.currency from invoice_lines l
        join organizations o on o.id = l.organization_id where o.name not like 'tampered:%'`,
    );
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) {
      const r = replayLine(l.steps);
      expect({ ok: r.ok, amount: r.amount }).toEqual({ ok: true, amount: l.amount });
      expect(r.amount_exact !== null && Money.of(r.amount_exact, l.currency).equals(Money.of(l.amount_exact, l.currency))).toBe(true);
    }
    const invoices = await sql<{ id: string; subtotal: string; tax_amount: string; total: string; currency: string; sum: string | null }>(
      api,
      `select i.id, i.subtotal::text, i.tax_amount::text, i.total::text, i.currency, (select sum(amount)::text from invoice_lines l where l.invoice_id = i.id) as sum
         from invoices i join organizations o on o.id = i.organization_id where o.name not like 'tampered:%'`,
    );
    for (const i of invoices) {
      expect(Money.of(i.sum ?? '0', i.currency).equals(Money.of(i.subtotal, i.currency))).toBe(true);
      expect(Money.of(i.subtotal, i.currency).plus(Money.of(i.tax_amount, i.currency)).equals(Money.of(i.total, i.currency))).toBe(true);
    }
  });
});
