// The close gate over HTTP (SPEC §6): a clean month reconciles, is signed off by two people and
// closes; support and auditor keys can do none of it; a sign-off is withdrawn when its data changes;
// an open exception blocks the close until it is resolved with its queue's evidence.
import { startApi, bearer, type TestApi } from '../helpers/api';
import { monthStart, runPeriodEnd, sendAll, sql, startWorker, tenant, type Tenant } from '../invoicing/fixtures';

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
    expect(signed.body).toMatchObject({ step: 'preparer', signer_role: 'finance', withdrawn_at: null });
    // One person cannot give both steps.
    expect((await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(preparer)).send({ step: 'reviewer' }).expect(422)).body.error.code).toBe('same_signer');
    expect((await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(reviewer)).send({ step: 'nope' }).expect(400)).body.error.code).toBe('unknown_step');
    await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(reviewer)).send({ step: 'reviewer' }).expect(201);
    expect(await status(t, period)).toMatchObject({ closable: true, blockers: [] });

    const closed = await t.post(`/v1/periods/${period}/close`, {}).expect(200);
    expect(closed.body).toMatchObject({ ledger_status: 'closed', transitioned: true });
    expect((await t.get(`/v1/ledger/periods/${period}`).expect(200)).body.status).toBe('closed');
    const [webhook] = await sql<{ payload: { period: string } }>(api, `select payload from outbox_messages where organization_id = ? and type = 'period.closed'`, [t.orgId]);
    expect(webhook.payload.period).toBe(period);
    // Closing again is one transition; nothing can be posted dated in it any more (the database says so).
    expect((await t.post(`/v1/periods/${period}/close`, {}).expect(200)).body.transitioned).toBe(false);
    await expect(
      sql(api, `insert into journal_entries (id, created_at, organization_id, currency, entry_date, key, source_type, source_id, description) values (gen_random_uuid(), now(), ?, 'USD', ?::date, 'raw', 'test', 'x', 'raw')`, [t.orgId, `${period}-15`]),
    ).rejects.toThrow(/closed/);
  });

  it('a sign-off is withdrawn when the data under a signed check changes, and the close waits for a new run', async () => {
    const { t, s, period } = await month('close: withdrawn');
    expect((await reconcile(t, period)).status).toBe('passed');
    const a = await t.key('finance');
    await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(a)).send({ step: 'preparer' }).expect(201);

    // A late event in the signed month: the events under events_rollups change.
    await t.send(t.calls('acme', 'api.call', 1, new Date(monthStart(-2).getTime() + 6 * 86_400_000)));
    await api.http.post(`/v1/periods/${period}/month-end`).set(t.auth).send({}).expect(200);
    const after = await status(t, period);
    expect(after.sign_offs.withdrawn_now).toEqual([expect.objectContaining({ step: 'preparer', withdrawn_reason: expect.stringMatching(/events_rollups/) })]);
    expect(codes(after)).toEqual(expect.arrayContaining(['check_stale', 'sign_off_missing']));
    const list = (await t.get(`/v1/periods/${period}/sign-offs`).expect(200)).body.data;
    expect(list).toEqual([expect.objectContaining({ step: 'preparer', withdrawn_at: expect.any(String) })]);
    // The withdrawal is history: the database refuses to un-withdraw or delete it.
    await expect(sql(api, 'update close_sign_offs set withdrawn_at = null where id = ?', [list[0].id])).rejects.toThrow(/withdrawn, once/);
    await expect(sql(api, 'delete from close_sign_offs where id = ?', [list[0].id])).rejects.toThrow(/append-only/);

    // The late event became a late_usage exception: it blocks the close until resolved with its evidence.
    const rerun = await reconcile(t, period);
    expect(rerun.status).toBeDefined();
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

    // The resolution changed data a check reads (the late usage is now billed): the checks run again on it.
    expect(codes(await status(t, period))).toContain('check_stale');
    await reconcile(t, period);
    const fresh = await status(t, period);
    expect(codes(fresh)).toEqual(['sign_off_missing', 'sign_off_missing']);
    await api.http.post(`/v1/periods/${period}/sign-offs`).set(bearer(a)).send({ step: 'preparer' }).expect(201);
    await api.http.post(`/v1/periods/${period}/sign-offs`).set(t.auth).send({ step: 'reviewer' }).expect(201);
    await t.post(`/v1/periods/${period}/close`, {}).expect(200);
  });
});
