// Exceptions and owned queues (SPEC §6) against real PostgreSQL and Redis: default queues, the
// (check, item, period) upsert, the cap and its summary, auto-resolution per period, evidence rules,
// the lifecycle with its audit and webhooks, SLA escalation, late usage billed as an adjustment,
// disputes with credit notes, roles. Every test makes its own organization; other suites share the
// database and their workers sweep every organization, so nothing here assumes a global count.
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { LateUsageService } from '@closebook/invoicing';
import { escalationJobId, ExceptionQueuesService, ExceptionsJobs, ExceptionsService, LateUsageExceptions, type RecordInput } from '@closebook/reconciliation';
import { bearer, startApi, type TestApi } from '../helpers/api';
import { DAY, monthStart, rollUp, runPeriodEnd, sendAll, sql, startWorker, tenant, type InvoiceJson } from '../invoicing/fixtures';

const lastMonth = monthStart(-1);
const inLastMonth = (day: number) => new Date(lastMonth.getTime() + (day - 1) * DAY + 3_600_000);
const month = (d: Date) => d.toISOString().slice(0, 7);

describe('exceptions and owned queues', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(async () => {
    await api.close();
  });

  const em = () => api.orm.em.fork() as EntityManager;
  const svc = () => api.app.get(ExceptionsService);
  const item = (orgId: string, over: Partial<RecordInput> = {}): RecordInput => ({
    organizationId: orgId,
    checkKey: 'rollups_lines',
    itemKey: `line-${randomUUID()}`,
    period: '2031-01',
    type: 'billing_variance',
    title: 'line billed 10.00, re-rated 12.00',
    currency: 'USD',
    expected: '12.00',
    actual: '10.00',
    variance: '-2.00',
    tolerance: { absolute: '0.01' },
    ...over,
  });
  const audit = (resourceId: string, action: string) => sql(api, 'select id, data from audit_log where resource_id = ? and action = ?', [resourceId, action]);
  const outbox = (orgId: string, type: string, exceptionId: string) =>
    sql<{ id: string; payload: Record<string, unknown> }>(api, "select id, payload from outbox_messages where organization_id = ? and type = ? and payload->>'exception_id' = ?", [orgId, type, exceptionId]);

  it('creates the default queues once, routes every type, and manages custom queues', async () => {
    const t = await tenant(api, 'Queues');
    const queues = api.app.get(ExceptionQueuesService);
    const first = await t.get('/v1/exception-queues').expect(200);
    expect(first.body.data.map((q: { key: string }) => q.key).sort()).toEqual(['billing-variance', 'disputes', 'flux-review', 'late-usage', 'ledger-posting', 'usage-integrity']);
    expect(await Promise.all([queues.ensureDefaults(em(), t.orgId), queues.ensureDefaults(em(), t.orgId), queues.ensureDefaults(em(), t.orgId)])).toEqual([0, 0, 0]);
    await t.get('/v1/exception-queues').expect(200);
    const [{ n }] = await sql<{ n: number }>(api, 'select count(*)::int as n from exception_queues where organization_id = ?', [t.orgId]);
    expect(n).toBe(6);

    const routing = await queues.routing(em(), t.orgId);
    const routed = Object.fromEntries([...routing].map(([type, q]) => [type, q.key]));
    expect(routed).toEqual({
      usage_integrity: 'usage-integrity',
      billing_variance: 'billing-variance',
      completeness: 'billing-variance',
      ledger_posting: 'ledger-posting',
      deferred_revenue: 'ledger-posting',
      flux: 'flux-review',
      late_usage: 'late-usage',
      dispute: 'disputes',
    });
    const bv = (await t.get('/v1/exception-queues/billing-variance').expect(200)).body;
    expect(bv).toMatchObject({ owner: 'finance', escalation_contact: 'controller', review_cadence: 'daily', sla_hours: 48, required_evidence: ['note', ['credit_note', 'invoice', 'adjustment']] });

    // Custom queues: a key is unique (409), a type is routed to one queue (409), bad bodies are 400s.
    const body = { key: 'vip-disputes', name: 'VIP', owner: 'ar-team', escalation_contact: 'cfo@example.com', review_cadence: 'daily', sla_hours: 8, required_evidence: ['note'] };
    const created = (await t.post('/v1/exception-queues', body).expect(201)).body;
    expect(created).toMatchObject({ key: 'vip-disputes', exception_types: [] });
    expect((await t.post('/v1/exception-queues', body).expect(409)).body.error.code).toBe('queue_key_taken');
    expect((await t.post('/v1/exception-queues', { ...body, key: 'other', exception_types: ['dispute'] }).expect(409)).body.error.code).toBe('type_already_routed');
    expect((await t.post('/v1/exception-queues', { ...body, key: 'bad', sla_hours: 0 }).expect(400)).body.error.field).toBe('sla_hours');
    expect((await t.post('/v1/exception-queues', { ...body, key: 'bad', required_evidence: ['signature'] }).expect(400)).body.error).toMatchObject({ code: 'invalid_value', field: expect.stringMatching(/^required_evidence/) });
    const updated = (await t.post(`/v1/exception-queues/${created.id}`, { sla_hours: 4, owner: 'ar-lead' }).expect(201)).body;
    expect(updated).toMatchObject({ sla_hours: 4, owner: 'ar-lead', key: 'vip-disputes' });
    expect(await audit(created.id, 'exception_queue.updated')).toHaveLength(1);
    await t.get(`/v1/exception-queues/${randomUUID()}`).expect(404);
  });

  it('records an item once per (check, item, period): a second run updates it, never a twin', async () => {
    const t = await tenant(api, 'Record');
    const input = item(t.orgId);
    const a = await svc().record(em(), input);
    const b = await svc().record(em(), { ...input, actual: '9.00', variance: '-3.00', title: 'line billed 9.00, re-rated 12.00' });
    expect([a.created, b.created, b.reopened]).toEqual([true, false, false]);
    expect(b.exception.id).toBe(a.exception.id);
    const rows = await sql<{ id: string; actual: string; variance: string; status: string; title: string }>(
      api,
      'select id, actual::text, variance::text, status, title from exceptions where organization_id = ? and check_key = ? and item_key = ?',
      [t.orgId, input.checkKey, input.itemKey],
    );
    expect(rows).toEqual([{ id: a.exception.id, actual: '9.00', variance: '-3.00', status: 'open', title: 'line billed 9.00, re-rated 12.00' }]);
    const detail = (await t.get(`/v1/exceptions/${a.exception.id}`).expect(200)).body;
    expect(detail).toMatchObject({ type: 'billing_variance', status: 'open', queue: { key: 'billing-variance', owner: 'finance', escalation_contact: 'controller' }, comments: [] });
    const sla = Date.parse(detail.sla_due_at) - Date.parse(detail.opened_at);
    expect(Math.abs(sla - 48 * 3_600_000)).toBeLessThan(60_000);
    expect(await audit(a.exception.id, 'exception.opened')).toHaveLength(1);
    expect(await outbox(t.orgId, 'exception.opened', a.exception.id)).toHaveLength(1);

    // Listing with filters; a bad filter is a 400.
    const list = (await t.get('/v1/exceptions?period=2031-01&status=open&queue=billing-variance&type=billing_variance').expect(200)).body;
    expect(list.data.map((e: { id: string }) => e.id)).toEqual([a.exception.id]);
    expect((await t.get('/v1/exceptions?status=closed').expect(400)).body.error.field).toBe('status');

    // The database is the last word: a twin is refused.
    await expect(
      sql(
        api,
        `insert into exceptions (id, organization_id, queue_id, type, check_key, item_key, period, title, sla_due_at, opened_at, last_seen_at)
         select ?, organization_id, queue_id, type, check_key, item_key, period, 'twin', now(), now(), now() from exceptions where id = ?`,
        [randomUUID(), a.exception.id],
      ),
    ).rejects.toThrow(/exceptions_organization_id_check_key_item_key_period_unique/);
  });

  it('opens one summary instead of more new items than the cap, and still updates the open ones', async () => {
    const t = await tenant(api, 'Cap');
    const opts = { organizationId: t.orgId, checkKey: 'events_rollups', period: '2031-02', cap: 10 };
    const known = item(t.orgId, { checkKey: 'events_rollups', period: '2031-02', type: 'usage_integrity', itemKey: 'rollup-known', expected: '100', actual: '90', variance: '-10', currency: null });
    await svc().record(em(), known);
    const fresh = Array.from({ length: 12 }, (_, i) => ({ itemKey: `rollup-${i}`, type: 'usage_integrity' as const, title: `rollup ${i} off`, expected: '100', actual: String(i), variance: String(i - 100) }));
    const r = await svc().recordMany(em(), [...fresh, { ...known, actual: '80', variance: '-20' }], { ...opts, runId: randomUUID() });
    expect(r).toMatchObject({ created: 0, updated: 1, newItems: 12 });
    expect(r.summary).toMatchObject({ created: true });
    const rows = await sql<{ item_key: string; type: string; actual: string; details: Record<string, unknown>; queue: string }>(
      api,
      `select e.item_key, e.type, e.actual::text, e.details, q.key as queue from exceptions e join exception_queues q on q.id = e.queue_id
       where e.organization_id = ? and e.check_key = 'events_rollups' and e.period = '2031-02' order by e.item_key`,
      [t.orgId],
    );
    expect(rows.map((x) => [x.item_key, x.type, x.queue])).toEqual([
      ['rollup-known', 'usage_integrity', 'usage-integrity'],
      ['summary', 'summary', 'usage-integrity'],
    ]);
    expect(rows[0].actual).toBe('80');
    expect(rows[1].details).toMatchObject({ cap: 10, new_items: 12, existing_items: 1 });
    expect((rows[1].details.sample as unknown[]).length).toBe(12);

    // Under the cap, the items open one by one; thousands go in batches.
    const many = Array.from({ length: 3000 }, (_, i) => ({ itemKey: `big-${i}`, type: 'billing_variance' as const, title: `line ${i}`, currency: 'USD', expected: '1.00', actual: '0.00', variance: '-1.00' }));
    const started = Date.now();
    const big = await svc().recordMany(em(), many, { organizationId: t.orgId, checkKey: 'rollups_lines', period: '2031-02', cap: 5000 });
    expect(big).toMatchObject({ created: 3000, updated: 0, summary: null });
    const again = await svc().recordMany(em(), many, { organizationId: t.orgId, checkKey: 'rollups_lines', period: '2031-02', cap: 5000 });
    expect(again).toMatchObject({ created: 0, updated: 3000, reopened: 0 });
    expect(Date.now() - started).toBeLessThan(30_000);
    const [{ n }] = await sql<{ n: number }>(api, "select count(*)::int as n from exceptions where organization_id = ? and check_key = 'rollups_lines'", [t.orgId]);
    expect(n).toBe(3000);
  });

  it('auto-resolves only the items of this check and this period that pass now; a failing item reopens', async () => {
    const t = await tenant(api, 'Auto');
    const base = { checkKey: 'lines_ledger', itemKey: 'invoice-1', type: 'ledger_posting' as const };
    const jan = await svc().record(em(), item(t.orgId, { ...base, period: '2031-01' }));
    const feb = await svc().record(em(), item(t.orgId, { ...base, period: '2031-02' }));
    const other = await svc().record(em(), item(t.orgId, { ...base, itemKey: 'invoice-2', period: '2031-02' }));
    const failing = await svc().record(em(), item(t.orgId, { ...base, itemKey: 'invoice-3', period: '2031-02' }));
    const runId = randomUUID();
    const seen = await svc().record(em(), item(t.orgId, { ...base, itemKey: 'invoice-4', period: '2031-02', runId }));

    // A clean February run: February's items pass (but the one it lists as failing, and the one it recorded).
    const res = await svc().autoResolve(em(), { organizationId: t.orgId, checkKey: 'lines_ledger', period: '2031-02', failingItemKeys: ['invoice-3'], runId });
    expect(res.itemKeys.sort()).toEqual(['invoice-1', 'invoice-2']);
    const status = async (id: string) => (await t.get(`/v1/exceptions/${id}`).expect(200)).body;
    expect(await status(jan.exception.id)).toMatchObject({ status: 'open' });
    expect(await status(feb.exception.id)).toMatchObject({ status: 'resolved', resolution_kind: 'auto' });
    expect(await status(other.exception.id)).toMatchObject({ status: 'resolved', resolution_kind: 'auto' });
    expect(await status(failing.exception.id)).toMatchObject({ status: 'open' });
    expect(await status(seen.exception.id)).toMatchObject({ status: 'open' });
    expect(await outbox(t.orgId, 'exception.resolved', feb.exception.id)).toHaveLength(1);
    expect(await audit(feb.exception.id, 'exception.resolved')).toHaveLength(1);
    // Only the listed passing items.
    const only = await svc().autoResolve(em(), { organizationId: t.orgId, checkKey: 'lines_ledger', period: '2031-02', passingItemKeys: ['invoice-4'] });
    expect(only.itemKeys).toEqual(['invoice-4']);

    // Failing again after an automatic resolution reopens it, figures or not.
    const back = await svc().record(em(), item(t.orgId, { ...base, period: '2031-02' }));
    expect(back).toMatchObject({ created: false, reopened: true });
    expect(back.exception).toMatchObject({ status: 'open', reopenCount: 1, resolutionKind: null });
    expect(await audit(feb.exception.id, 'exception.reopened')).toHaveLength(1);
    expect(await outbox(t.orgId, 'exception.reopened', feb.exception.id)).toHaveLength(1);
  });

  it('refuses a resolution without the queue’s evidence (nothing changes), then resolves, audits and announces it', async () => {
    const t = await tenant(api, 'Evidence');
    await t.product({ key: 'fee', name: 'Fee', kind: 'recurring' });
    await t.plan('basic', [{ product_key: 'fee', price: { model: 'flat', amount: '20' } }]);
    const s = await t.subscribe('acme', 'basic');
    const [opening] = await t.invoices(`&subscription=${s.subscriptionId}&kind=opening`);
    const { exception } = await svc().record(em(), item(t.orgId, { refs: { invoice_id: opening.id, subscription_id: s.subscriptionId } }));
    const before = (await t.get(`/v1/exceptions/${exception.id}`).expect(200)).body;

    const noNote = await t.post(`/v1/exceptions/${exception.id}/resolve`, { kind: 'corrected', evidence: { invoice_id: opening.id } }).expect(422);
    expect(noNote.body.error).toMatchObject({ code: 'evidence_required', field: 'note' });
    const noDoc = await t.post(`/v1/exceptions/${exception.id}/resolve`, { kind: 'corrected', note: 'fixed' }).expect(422);
    expect(noDoc.body.error).toMatchObject({ code: 'evidence_required', details: { missing: ['credit_note|invoice|adjustment'] } });
    const ghost = await t.post(`/v1/exceptions/${exception.id}/resolve`, { kind: 'corrected', note: 'fixed', evidence: { credit_note_id: randomUUID() } }).expect(422);
    expect(ghost.body.error).toMatchObject({ code: 'evidence_required', field: 'evidence.credit_note_id' });
    expect((await t.post(`/v1/exceptions/${exception.id}/resolve`, { kind: 'corrected', note: 'x', extra: 1 }).expect(400)).body.error.code).toBe('unknown_field');
    expect((await t.get(`/v1/exceptions/${exception.id}`).expect(200)).body).toEqual(before);
    expect(await audit(exception.id, 'exception.resolved')).toHaveLength(0);

    // Assign, comment, then resolve with the invoice that bills the correction.
    await t.post(`/v1/exceptions/${exception.id}/assign`, { assignee: 'ana@example.com' }).expect(201);
    await t.post(`/v1/exceptions/${exception.id}/comment`, { body: 'rebilled on the opening invoice' }).expect(201);
    const ok = (await t.post(`/v1/exceptions/${exception.id}/resolve`, { kind: 'corrected', note: 'rebilled', evidence: { invoice_id: opening.id } }).expect(201)).body;
    expect(ok).toMatchObject({ status: 'resolved', resolution_kind: 'corrected', resolution_note: 'rebilled', evidence: { invoice_id: opening.id }, assignee: 'ana@example.com' });
    expect(ok.comments).toEqual([expect.objectContaining({ body: 'rebilled on the opening invoice', author: expect.stringMatching(/^key:/) })]);
    expect(await audit(exception.id, 'exception.assigned')).toHaveLength(1);
    expect(await audit(exception.id, 'exception.resolved')).toHaveLength(1);
    expect(await outbox(t.orgId, 'exception.assigned', exception.id)).toHaveLength(1);
    const [hook] = await outbox(t.orgId, 'exception.resolved', exception.id);
    expect(hook.payload).toMatchObject({ status: 'resolved', resolution_kind: 'corrected', queue: 'billing-variance' });
    // State machine: resolving or waiving twice is a 422; another organization's exception is a 404.
    expect((await t.post(`/v1/exceptions/${exception.id}/resolve`, { kind: 'accepted', note: 'again' }).expect(422)).body.error.code).toBe('exception_not_open');
    expect((await t.post(`/v1/exceptions/${exception.id}/waive`, { note: 'x' }).expect(422)).body.error.code).toBe('exception_not_open');
    const stranger = await tenant(api, 'Stranger');
    await stranger.get(`/v1/exceptions/${exception.id}`).expect(404);
    await stranger.post(`/v1/exceptions/${exception.id}/assign`, { assignee: 'x' }).expect(404);
    await t.get('/v1/exceptions/not-a-uuid').expect(404);
  });

  it('freezes accepted evidence; reopens with the past resolution kept; waives', async () => {
    const t = await tenant(api, 'Accepted');
    const { exception } = await svc().record(em(), item(t.orgId, { type: 'flux', checkKey: 'flux', itemKey: 'revenue:4000' }));
    const accepted = (await t.post(`/v1/exceptions/${exception.id}/resolve`, { kind: 'accepted', note: 'seasonal: Black Friday' }).expect(201)).body;
    expect(accepted).toMatchObject({ status: 'resolved', resolution_kind: 'accepted', evidence: {} });
    await expect(sql(api, `update exceptions set evidence = '{"invoice_id": "x"}' where id = ?`, [exception.id])).rejects.toThrow(/frozen/);
    await expect(sql(api, `update exceptions set resolution_note = 'other' where id = ?`, [exception.id])).rejects.toThrow(/frozen/);
    // A run seeing the same figures leaves it resolved; other figures reopen it.
    expect(await svc().record(em(), item(t.orgId, { type: 'flux', checkKey: 'flux', itemKey: 'revenue:4000' }))).toMatchObject({ reopened: false, exception: { status: 'resolved' } });

    expect((await t.post(`/v1/exceptions/${exception.id}/reopen`, {}).expect(400)).body.error.field).toBe('reason');
    const reopened = (await t.post(`/v1/exceptions/${exception.id}/reopen`, { reason: 'the variance grew' }).expect(201)).body;
    expect(reopened).toMatchObject({ status: 'open', resolution_kind: null, evidence: null, reopen_count: 1 });
    expect(reopened.past_resolutions).toEqual([expect.objectContaining({ status: 'resolved', resolution_kind: 'accepted', resolution_note: 'seasonal: Black Friday', reopen_reason: 'the variance grew' })]);
    expect((await t.post(`/v1/exceptions/${exception.id}/reopen`, { reason: 'again' }).expect(422)).body.error.code).toBe('exception_not_closed');
    expect(await audit(exception.id, 'exception.reopened')).toHaveLength(1);
    expect(await outbox(t.orgId, 'exception.reopened', exception.id)).toHaveLength(1);

    const waived = (await t.post(`/v1/exceptions/${exception.id}/waive`, { note: 'immaterial' }).expect(201)).body;
    expect(waived).toMatchObject({ status: 'waived', resolution_note: 'immaterial', resolution_kind: null });
    expect(await outbox(t.orgId, 'exception.waived', exception.id)).toHaveLength(1);
    // Waived with the same figures stays waived; other figures reopen it.
    expect(await svc().record(em(), item(t.orgId, { type: 'flux', checkKey: 'flux', itemKey: 'revenue:4000' }))).toMatchObject({ reopened: false, exception: { status: 'waived' } });
    expect(await svc().record(em(), item(t.orgId, { type: 'flux', checkKey: 'flux', itemKey: 'revenue:4000', actual: '1.00', variance: '-11.00' }))).toMatchObject({ reopened: true, exception: { status: 'open', reopenCount: 2 } });
  });

  it('escalates an item past its SLA once (flag, audit, webhook)', async () => {
    const t = await tenant(api, 'Escalation');
    const { exception } = await svc().record(em(), item(t.orgId));
    const { exception: fresh } = await svc().record(em(), item(t.orgId));
    await sql(api, `update exceptions set sla_due_at = now() - interval '1 hour' where id = ?`, [exception.id]);
    await svc().escalateDue(em(), new Date());
    await svc().escalateDue(em(), new Date());
    const e = (await t.get(`/v1/exceptions/${exception.id}`).expect(200)).body;
    expect(e).toMatchObject({ escalated: true, status: 'open' });
    expect(e.escalated_at).not.toBeNull();
    expect((await t.get(`/v1/exceptions/${fresh.id}`).expect(200)).body).toMatchObject({ escalated: false });
    expect(await audit(exception.id, 'exception.escalated')).toHaveLength(1);
    const hooks = await outbox(t.orgId, 'exception.escalated', exception.id);
    expect(hooks).toHaveLength(1);
    expect(hooks[0].payload).toMatchObject({ escalation_contact: 'controller', owner: 'finance', queue: 'billing-variance' });
    // The 5-minute schedule enqueues the sweep with an id BullMQ accepts (one job per slot).
    const jobs = api.app.get(ExceptionsJobs);
    await expect(jobs.tick(new Date())).resolves.toEqual(expect.any(Boolean));
    expect(escalationJobId(new Date(0))).toBe('escalate-exceptions-0');
  });

  it('roles: support and auditor read; only finance and admin change; support opens disputes', async () => {
    const t = await tenant(api, 'Roles');
    const { exception } = await svc().record(em(), item(t.orgId));
    const support = await t.key('support');
    const auditor = await t.key('auditor');
    const ingest = await t.key('ingest');
    const finance = await t.key('finance');
    for (const key of [support, auditor]) {
      await api.http.get(`/v1/exceptions/${exception.id}`).set(bearer(key)).expect(200);
      await api.http.get('/v1/exception-queues').set(bearer(key)).expect(200);
      await api.http.post(`/v1/exceptions/${exception.id}/assign`).set(bearer(key)).send({ assignee: 'x' }).expect(403);
      await api.http.post(`/v1/exceptions/${exception.id}/resolve`).set(bearer(key)).send({ kind: 'accepted', note: 'x' }).expect(403);
      await api.http.post(`/v1/exceptions/${exception.id}/waive`).set(bearer(key)).send({ note: 'x' }).expect(403);
      await api.http.post(`/v1/exceptions/${exception.id}/reopen`).set(bearer(key)).send({ reason: 'x' }).expect(403);
      await api.http.post('/v1/exception-queues').set(bearer(key)).send({}).expect(403);
    }
    await api.http.get('/v1/exceptions').set(bearer(ingest)).expect(403);
    await api.http.post('/v1/disputes').set(bearer(auditor)).send({}).expect(403);
    // Support reaches the dispute route (a bad body is its 400, not a 403).
    expect((await api.http.post('/v1/disputes').set(bearer(support)).send({}).expect(400)).body.error.code).toBe('missing_field');
    await api.http.post(`/v1/exceptions/${exception.id}/assign`).set(bearer(finance)).send({ assignee: 'fin' }).expect(201);
  });

  describe('with billed invoices (worker in-process)', () => {
    let w: Awaited<ReturnType<typeof startWorker>>;
    beforeAll(async () => {
      w = await startWorker();
    });
    afterAll(async () => {
      await w.close();
    });

    async function finalizedInvoice(name: string) {
      const t = await tenant(api, name);
      await t.product({ key: 'starter_fee', name: 'Starter plan', kind: 'recurring' });
      await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
      await t.plan('starter', [
        { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } },
        { product_key: 'api_calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.01' } },
      ]);
      const s = await t.subscribe('acme', 'starter', { started_at: lastMonth });
      await sendAll(t, t.calls('acme', 'api.call', 1500, inLastMonth(5)));
      await runPeriodEnd(api, w, t.orgId);
      const draft = await t.periodInvoice(s.subscriptionId, lastMonth);
      const invoice = (await t.post(`/v1/invoices/${draft.id}/finalize`, {}).expect(201)).body as InvoiceJson;
      return { t, s, invoice };
    }

    /** Sends late events and waits until the invoice's rollup reaches `total` events and is recorded as late usage (the worker's own rollup job may hold the events a moment). */
    async function lateUsage(t: Awaited<ReturnType<typeof tenant>>, invoiceId: string, count: number, day: number, total: number) {
      await sendAll(t, t.calls('acme', 'api.call', count, inLastMonth(day)));
      for (let i = 0; ; i++) {
        await rollUp(api, t.orgId);
        await api.app.get(LateUsageService).watch(em(), new Date(), t.orgId);
        const rows = (await t.get(`/v1/late-usage?invoice=${invoiceId}&status=open`).expect(200)).body.data as { id: string; amount: { amount: string }; event_count: string }[];
        if (rows.some((r) => r.event_count === String(total))) return rows;
        if (i >= 100) throw new Error(`late usage was not recorded: ${JSON.stringify(rows)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }

    it('late usage becomes an exception; corrected bills it as an adjustment of its original period (once); waived waives it', async () => {
      const { t, s, invoice } = await finalizedInvoice('Late usage');
      const [late] = await lateUsage(t, invoice.id, 200, 20, 1700);
      expect(late.amount.amount).toBe('2.00');
      const sync = api.app.get(LateUsageExceptions);
      expect(await sync.sync(em(), t.orgId)).toMatchObject({ recorded: 1, created: 1 });
      expect(await sync.sync(em(), t.orgId)).toMatchObject({ recorded: 1, created: 0 });
      const [ex] = (await t.get(`/v1/exceptions?type=late_usage&period=${month(lastMonth)}`).expect(200)).body.data;
      expect(ex).toMatchObject({ check_key: 'late_usage', item_key: late.id, period: month(lastMonth), currency: 'USD', variance: '2.00', invoice_id: invoice.id, status: 'open' });

      const resolved = (await t.post(`/v1/exceptions/${ex.id}/resolve`, { kind: 'corrected', note: 'bill it next month' }).expect(201)).body;
      expect(resolved).toMatchObject({ status: 'resolved', resolution_kind: 'corrected', evidence: { adjustment_id: expect.any(String) } });
      const items = await sql<{ id: string; kind: string; payload: Record<string, unknown>; source_type: string }>(
        api,
        "select id, kind, payload, source_type from invoice_pending_items where organization_id = ? and source_id = ?",
        [t.orgId, late.id],
      );
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ id: resolved.evidence.adjustment_id, kind: 'adjustment', source_type: 'late_usage' });
      expect(items[0].payload).toMatchObject({ adjustment_id: late.id, amount: '2.00', product_key: 'api_calls', quantity: '200', period_start: lastMonth.toISOString() });
      const [{ status }] = await sql<{ status: string }>(api, 'select status from late_usage where id = ?', [late.id]);
      expect(status).toBe('billed');
      // Billing again is the same pending item.
      const again = await api.app.get(LateUsageService).bill(em(), t.orgId, late.id);
      expect(again).toMatchObject({ billed: false, pendingItem: { id: items[0].id } });
      expect(await sql(api, 'select id from invoice_pending_items where source_id = ?', [late.id])).toHaveLength(1);
      // And the database refuses a second one, whatever path would write it.
      await expect(
        sql(
          api,
          `insert into invoice_pending_items (id, organization_id, subscription_id, kind, payload, billable_from, source_type, source_id, description)
           select gen_random_uuid(), organization_id, subscription_id, kind, payload, billable_from, source_type, source_id, description from invoice_pending_items where id = ?`,
          [items[0].id],
        ),
      ).rejects.toThrow(/invoice_pending_items_late_usage_unique/);

      // The next period invoice carries it as an adjustment line dated in its original period.
      const upcoming = (await t.get(`/v1/subscriptions/${s.subscriptionId}/upcoming-invoice`).expect(200)).body;
      const adj = upcoming.invoice.lines.find((l: { type: string }) => l.type === 'adjustment');
      expect(adj).toMatchObject({ product_key: 'api_calls', period_start: lastMonth.toISOString(), amount: { amount: '2.00' } });

      // More late usage, waived: never billed.
      const [late2] = await lateUsage(t, invoice.id, 100, 21, 1800);
      await sync.sync(em(), t.orgId, month(lastMonth));
      const all = (await t.get(`/v1/exceptions?type=late_usage`).expect(200)).body.data;
      const ex2 = all.find((e: { item_key: string }) => e.item_key === late2.id);
      expect(ex2).toMatchObject({ status: 'open', period: month(lastMonth) });
      await t.post(`/v1/exceptions/${ex2.id}/waive`, { note: 'goodwill' }).expect(201);
      const [{ status: s2 }] = await sql<{ status: string }>(api, 'select status from late_usage where id = ?', [late2.id]);
      expect(s2).toBe('waived');
      expect(await sql(api, 'select id from invoice_pending_items where source_id = ?', [late2.id])).toHaveLength(0);
    });

    it('a dispute lands in the disputes queue; resolving it corrected issues the credit note', async () => {
      const { t, invoice } = await finalizedInvoice('Disputes');
      const support = await t.key('support');
      const line = invoice.lines.find((l) => l.type === 'usage_overage')!;
      const opened = await api.http.post('/v1/disputes').set(bearer(support)).send({ invoice_id: invoice.id, invoice_line_id: line.id, reason: 'we were throttled that week', amount: '1.50' }).expect(201);
      expect(opened.body).toMatchObject({ type: 'dispute', check_key: 'dispute', period: month(lastMonth), status: 'open', invoice_line_id: line.id, variance: '1.5', created: true });
      const detail = (await t.get(`/v1/exceptions/${opened.body.id}`).expect(200)).body;
      expect(detail.queue).toMatchObject({ key: 'disputes', escalation_contact: 'support-lead' });
      await api.http.post('/v1/disputes').set(bearer(support)).send({ invoice_id: invoice.id, invoice_line_id: randomUUID(), reason: 'x' }).expect(404);
      expect((await api.http.post('/v1/disputes').set(bearer(support)).send({ invoice_id: invoice.id, invoice_line_id: line.id, reason: 'x', amount: '9999' }).expect(422)).body.error.code).toBe('dispute_exceeds_line');

      const res = (await t.post(`/v1/exceptions/${opened.body.id}/resolve`, { kind: 'corrected', note: 'credited', credit_note: { amount: '1.50', reason: 'throttling' } }).expect(201)).body;
      expect(res).toMatchObject({ status: 'resolved', resolution_kind: 'corrected', evidence: { credit_note_id: expect.any(String) } });
      const notes = (await t.get(`/v1/invoices/${invoice.id}/credit-notes`).expect(200)).body.data;
      expect(notes).toEqual([expect.objectContaining({ id: res.evidence.credit_note_id })]);
    });
  });
});
