// Reading a close status never writes (docs/close.md "Reads never write"), and a closed month is frozen:
// after a month closes, any number of status reads by every role — with plan changes, events and runs of the
// next month in between — leave the database byte for byte as it was, and the closed month says `closed`, by
// whom and when, with the sign-offs (valid) and the runs it closed on.
import type { EntityManager } from '@mikro-orm/postgresql';
import { SubscriptionBillingService } from '@closebook/invoicing';
import { startApi, bearer, type TestApi } from '../helpers/api';
import { DAY, monthStart, runPeriodEnd, sendAll, sql, startWorker, tenant, type Tenant } from '../invoicing/fixtures';

const ym = (d: Date) => d.toISOString().slice(0, 7);

describe('close status reads', () => {
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

  /**
   * Every row of the organization, table by table (other suites share this database and write their own
   * organizations meanwhile). The outbox dispatcher's `dispatched_at` is left out: it publishes in the
   * background whenever it likes, which is not a write of a read.
   */
  async function databaseDigest(orgId: string): Promise<Record<string, string>> {
    const tables = await sql<{ table_name: string }>(
      api,
      `select c.table_name from information_schema.columns c join information_schema.tables t using (table_schema, table_name)
        where c.table_schema = 'public' and t.table_type = 'BASE TABLE' and c.column_name = 'organization_id' order by 1`,
    );
    expect(tables.map((x) => x.table_name)).toEqual(expect.arrayContaining(['close_sign_offs', 'audit_log', 'reconciliation_runs', 'period_closes', 'exceptions', 'invoices']));
    const out: Record<string, string> = {};
    for (const { table_name: table } of tables) {
      const row = table === 'outbox_messages' ? `(to_jsonb(x) - 'dispatched_at')::text` : 'x::text';
      const [d] = await sql<{ n: string; d: string }>(
        api,
        `select count(*)::text as n, md5(coalesce(string_agg(${row}, '|' order by ${row}), '')) as d from "${table}" x where organization_id = ?`,
        [orgId],
      );
      out[table] = `${d.n}:${d.d}`;
    }
    return out;
  }

  async function reconcile(t: Tenant, period: string) {
    await api.http.post(`/v1/periods/${period}/month-end`).set(t.auth).send({}).expect(200);
    const started = await api.http.post(`/v1/periods/${period}/reconciliation-runs`).set(t.auth).send({}).expect(202);
    for (const deadline = Date.now() + 60_000; ; ) {
      const run = (await t.get(`/v1/periods/${period}/reconciliation-runs/${started.body.id}`).expect(200)).body;
      if (['passed', 'failed', 'error'].includes(run.status)) return run;
      if (Date.now() > deadline) throw new Error(`run did not finish: ${JSON.stringify(run)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('every role reads open and closed months without changing a row; the closed month stays as it closed', async () => {
    const [m1, m0] = [monthStart(-1), monthStart(0)];
    const P = ym(m1);
    const t = await tenant(api, 'close: reads');
    await t.product({ key: 'pro_fee', name: 'Pro plan', kind: 'recurring' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    for (const [key, fee] of [['pro', '49'], ['team', '99']]) {
      await t.plan(key, [
        { product_key: 'pro_fee', price: { model: 'flat', amount: fee } },
        { product_key: 'api_calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.01' } },
      ]);
    }
    const s = await t.subscribe('acme', 'pro', { started_at: m1 });
    await sendAll(t, t.calls('acme', 'api.call', 1_500, new Date(m1.getTime() + 5 * DAY)));
    await runPeriodEnd(api, w, t.orgId);
    const drafts = (await t.invoices('&status=draft')).sort((a, b) => a.period_start.localeCompare(b.period_start) || (a.kind === 'opening' ? -1 : 1));
    for (const inv of drafts) await t.post(`/v1/invoices/${inv.id}/finalize`, {}).expect(201);

    const run = await reconcile(t, P);
    expect(run.status).toBe('passed');
    const [preparer, reviewer] = [await t.key('finance'), await t.key('finance')];
    await api.http.post(`/v1/periods/${P}/sign-offs`).set(bearer(preparer)).send({ step: 'preparer' }).expect(201);
    await api.http.post(`/v1/periods/${P}/sign-offs`).set(bearer(reviewer)).send({ step: 'reviewer' }).expect(201);
    const closed = (await api.http.post(`/v1/periods/${P}/close`).set(bearer(reviewer)).send({}).expect(200)).body;

    // The next month moves on: an upgrade now and a downgrade scheduled for next month, this month's events, a run.
    const billing = api.app.get(SubscriptionBillingService);
    await billing.transition(em(), t.orgId, s.subscriptionId, { plan_key: 'team' });
    await billing.transition(em(), t.orgId, s.subscriptionId, { plan_key: 'pro', timing: 'period_end' });
    await sendAll(t, t.calls('acme', 'api.call', 10, new Date(m0.getTime() + 60_000)));
    await reconcile(t, ym(m0));

    const roles = ['admin', 'finance', 'support', 'auditor'];
    const keys = Object.fromEntries(await Promise.all(roles.map(async (r) => [r, r === 'admin' ? null : await t.key(r)] as const)));
    const ingest = await t.key('ingest');
    const read = (role: string, period: string) => api.http.get(`/v1/periods/${period}/close`).set(keys[role] ? bearer(keys[role]!) : t.auth);

    const before = await databaseDigest(t.orgId);
    const seen: Record<string, unknown>[] = [];
    for (let i = 0; i < 3; i++) {
      for (const role of roles) {
        seen.push((await read(role, P).expect(200)).body);
        await read(role, ym(m0)).expect(200);
        await read(role, ym(monthStart(-3))).expect(200);
      }
    }
    // An ingest key may not read it, and that refusal writes nothing either.
    await api.http.get(`/v1/periods/${P}/close`).set(bearer(ingest)).expect(403);
    expect(await databaseDigest(t.orgId)).toEqual(before);

    // The closed month: closed, by whom and when, every sign-off valid, the checks of the run it closed on.
    for (const body of seen) {
      expect(body).toEqual(seen[0]);
      expect(body).toMatchObject({ state: 'closed', ledger_status: 'closed', closable: false, closed: closed.closed });
    }
    const status = seen[0] as { closed: { by: string; at: string }; sign_offs: { given: { step: string; state: string }[] }; checks: { run_id: string; status: string }[]; blockers: { code: string }[] };
    expect(status.closed.by).toEqual(expect.stringContaining('key:'));
    expect(status.sign_offs.given.map((g) => [g.step, g.state])).toEqual([
      ['preparer', 'valid'],
      ['reviewer', 'valid'],
    ]);
    expect(status.checks.map((c) => c.run_id)).toEqual(Array(6).fill(run.id));
    expect(status.blockers.map((b) => b.code)).toEqual(['period_closed']);
    // The sign-off list (history) agrees: nothing withdrawn.
    const list = (await t.get(`/v1/periods/${P}/sign-offs`).expect(200)).body.data as { withdrawn_at: string | null }[];
    expect(list.every((x) => x.withdrawn_at === null)).toBe(true);
    // And the database refuses to rewrite the record of the close.
    await expect(sql(api, `update period_closes set closed_by = 'someone else' where organization_id = ?`, [t.orgId])).rejects.toThrow(/append-only/);
  }, 120_000);
});
