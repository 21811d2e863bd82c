import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Money } from '@closebook/money';
import { ACCOUNTS, LedgerPeriodsService, LedgerService, RevenueRecognitionService } from '@closebook/ledger';
import { bearer, startApi, type TestApi } from '../helpers/api';
import { closeMonth } from './ledger-fixtures';

describe('ledger reports over HTTP', () => {
  let api: TestApi;
  let orgA: { orgId: string; adminKey: string };
  let orgB: { orgId: string; adminKey: string };
  const keys: Record<string, string> = {};
  const customer1 = randomUUID();
  const customer2 = randomUUID();
  const entryIds: string[] = [];
  let scheduleId = '';
  const em = (): EntityManager => api.orm.em.fork() as EntityManager;

  beforeAll(async () => {
    api = await startApi();
    orgA = await api.newOrg('Ledger A');
    orgB = await api.newOrg('Ledger B');
    for (const role of ['finance', 'auditor', 'support', 'ingest']) {
      keys[role] = (await api.http.post('/v1/api-keys').set(bearer(orgA.adminKey)).send({ role }).expect(201)).body.api_key;
    }
    const ledger = api.app.get(LedgerService);
    const post = (key: string, date: string, customer: string, amount: string, revenue: string) =>
      ledger.post(em(), {
        organizationId: orgA.orgId,
        currency: 'USD',
        date,
        key,
        source: { type: 'invoice', id: key },
        description: `Invoice ${key}`,
        lines: [
          { account_code: ACCOUNTS.ACCOUNTS_RECEIVABLE, party_id: customer, debit: Money.of(amount, 'USD') },
          { account_code: revenue, credit: Money.of(amount, 'USD') },
        ],
      });
    entryIds.push((await post('inv-1', '2025-03-31', customer1, '49.00', ACCOUNTS.REVENUE_SUBSCRIPTION)).id);
    entryIds.push((await post('inv-2', '2025-04-10', customer1, '75.00', ACCOUNTS.REVENUE_USAGE)).id);
    entryIds.push((await post('inv-3', '2025-04-20', customer2, '234.00', ACCOUNTS.REVENUE_SEATS_ADDONS)).id);
    entryIds.push(
      (
        await ledger.post(em(), {
          organizationId: orgA.orgId,
          currency: 'USD',
          date: '2025-04-25',
          key: 'pay-1',
          source: { type: 'payment', id: 'pay-1' },
          description: 'Payment',
          lines: [
            { account_code: ACCOUNTS.CASH, debit: Money.of('49.00', 'USD') },
            { account_code: ACCOUNTS.ACCOUNTS_RECEIVABLE, party_id: customer1, credit: Money.of('49.00', 'USD') },
          ],
        })
      ).id,
    );
    scheduleId = (
      await api.app.get(RevenueRecognitionService).createSchedule(em(), {
        organizationId: orgA.orgId,
        key: 'line-9',
        source: { type: 'invoice_line', id: 'line-9' },
        total: Money.of('120.00', 'USD'),
        serviceStart: '2025-04-01',
        serviceEnd: '2025-07-01',
        toAccount: ACCOUNTS.REVENUE_SUBSCRIPTION,
        partyId: customer2,
      })
    ).id;
  });
  afterAll(() => api.close());

  const get = (path: string, key = orgA.adminKey) => api.http.get(path).set(bearer(key));

  it('lists the chart of accounts with balances in decimal-string money', async () => {
    const res = await get('/v1/ledger/accounts?currency=USD').expect(200);
    expect(res.body.data).toHaveLength(11);
    expect(res.body.data.find((a: { code: string }) => a.code === '1100')).toMatchObject({
      name: 'Accounts receivable',
      type: 'asset',
      normal_balance: 'debit',
      requires_party: true,
      balance: { amount: '309.00', currency: 'USD' },
    });
    const asOf = await get('/v1/ledger/accounts?as_of=2025-03-31').expect(200);
    expect(asOf.body.data.find((a: { code: string }) => a.code === '1100').balance.amount).toBe('49.00');
  });

  it('admits finance and auditor keys, not support or ingest', async () => {
    await get('/v1/ledger/trial-balance?period=2025-04', keys.finance).expect(200);
    await get('/v1/ledger/entries', keys.auditor).expect(200);
    expect((await get('/v1/ledger/accounts', keys.support).expect(403)).body.error.code).toBe('forbidden');
    await get('/v1/ledger/periods', keys.ingest).expect(403);
    await api.http.get('/v1/ledger/accounts').expect(401);
  });

  it('lists entries with their lines, filtered by period and source, cursor-paginated', async () => {
    const april = await get('/v1/ledger/entries?period=2025-04').expect(200);
    expect(april.body.data.map((e: { source_id: string }) => e.source_id).sort()).toEqual(['inv-2', 'inv-3', 'pay-1']);
    const inv3 = april.body.data.find((e: { source_id: string }) => e.source_id === 'inv-3');
    expect(inv3).toMatchObject({
      date: '2025-04-20',
      period: '2025-04',
      currency: 'USD',
      source_type: 'invoice',
      total: { amount: '234.00', currency: 'USD' },
      corrects_period: null,
      reverses_entry_id: null,
    });
    expect(inv3.lines[0]).toMatchObject({
      line_no: 1,
      account_code: '1100',
      account_name: 'Accounts receivable',
      party_id: customer2,
      debit: { amount: '234.00', currency: 'USD' },
      credit: { amount: '0.00', currency: 'USD' },
    });
    const bySource = await get('/v1/ledger/entries?source_type=payment&source_id=pay-1').expect(200);
    expect(bySource.body.data).toHaveLength(1);
    const byParty = await get(`/v1/ledger/entries?account_code=1100&party_id=${customer1}`).expect(200);
    expect(byParty.body.data).toHaveLength(3);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: { id: string }[]; next_cursor: string | null } } = await get(
        `/v1/ledger/entries?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      ).expect(200);
      seen.push(...page.body.data.map((e) => e.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen.sort()).toEqual([...entryIds].sort());
  });

  it('answers the trial balance: per account opening, debits, credits, closing; the receivables sub-ledger; totals of zero', async () => {
    const res = await get('/v1/ledger/trial-balance?period=2025-04').expect(200);
    expect(res.body).toMatchObject({ period: '2025-04', from: '2025-04-01', to: '2025-04-30', status: 'open' });
    const usd = res.body.currencies[0];
    expect(usd.currency).toBe('USD');
    const ar = usd.accounts.find((a: { code: string }) => a.code === '1100');
    expect(ar).toMatchObject({
      opening: { amount: '49.00', currency: 'USD' },
      debits: { amount: '309.00', currency: 'USD' },
      credits: { amount: '49.00', currency: 'USD' },
      closing: { amount: '309.00', currency: 'USD' },
    });
    expect(usd.accounts.find((a: { code: string }) => a.code === '4000').closing.amount).toBe('-49.00');
    expect(usd.totals).toEqual({
      opening: { amount: '0.00', currency: 'USD' },
      debits: { amount: '358.00', currency: 'USD' },
      credits: { amount: '358.00', currency: 'USD' },
      closing: { amount: '0.00', currency: 'USD' },
    });
    expect(usd.balanced).toBe(true);
    const sub = usd.sub_ledgers.find((s: { account_code: string }) => s.account_code === '1100');
    expect(sub.ties_to_control).toBe(true);
    expect(Object.fromEntries(sub.parties.map((p: { party_id: string; closing: { amount: string } }) => [p.party_id, p.closing.amount]))).toEqual({
      [customer1]: '75.00',
      [customer2]: '234.00',
    });
  });

  it('reports periods and their status', async () => {
    const march = await get('/v1/ledger/periods/2025-03').expect(200);
    expect(march.body).toMatchObject({ period: '2025-03', status: 'open', closed_at: null });
    await closeMonth(em(), api.app.get(LedgerPeriodsService), orgA.orgId, '2025-03');
    expect((await get('/v1/ledger/periods/2025-03', keys.auditor).expect(200)).body).toMatchObject({ status: 'closed', closed_at: expect.any(String) });
    const list = await get('/v1/ledger/periods').expect(200);
    const byPeriod = Object.fromEntries(list.body.data.map((p: { period: string }) => [p.period, p]));
    expect(byPeriod['2025-03']).toMatchObject({ status: 'closed', entry_count: 1 });
    expect(byPeriod['2025-04']).toMatchObject({ status: 'open', entry_count: 3 });
    expect(list.body.data[0].period > list.body.data[1].period).toBe(true);
    expect((await get('/v1/ledger/trial-balance?period=2025-03').expect(200)).body.status).toBe('closed');
  });

  it('shows deferral schedules with their monthly plan', async () => {
    const list = await get('/v1/ledger/deferral-schedules?source_type=invoice_line').expect(200);
    expect(list.body.data.map((s: { id: string }) => s.id)).toEqual([scheduleId]);
    const one = await get(`/v1/ledger/deferral-schedules/${scheduleId}`).expect(200);
    expect(one.body).toMatchObject({
      total: { amount: '120.00', currency: 'USD' },
      service_start: '2025-04-01',
      service_end: '2025-07-01',
      recognized: { amount: '0.00', currency: 'USD' },
      remaining: { amount: '120.00', currency: 'USD' },
    });
    expect(one.body.months.map((m: { amount: { amount: string } }) => m.amount.amount)).toEqual(['40.00', '40.00', '40.00']);
  });

  it("isolates organizations: B sees none of A's ledger and gets 404 for A's entry and schedule", async () => {
    const res = await get(`/v1/ledger/entries/${entryIds[0]}`, orgB.adminKey).expect(404);
    expect(res.body.error.code).toBe('not_found');
    await get(`/v1/ledger/entries/${entryIds[0]}`).expect(200);
    await get(`/v1/ledger/deferral-schedules/${scheduleId}`, orgB.adminKey).expect(404);
    await get(`/v1/ledger/entries/${randomUUID()}`).expect(404);
    await get('/v1/ledger/entries/not-a-uuid').expect(404);
    expect((await get('/v1/ledger/entries', orgB.adminKey).expect(200)).body).toEqual({ data: [], next_cursor: null });
    expect((await get('/v1/ledger/accounts', orgB.adminKey).expect(200)).body.data).toEqual([]);
    expect((await get('/v1/ledger/trial-balance?period=2025-04', orgB.adminKey).expect(200)).body.currencies).toEqual([]);
    expect((await get('/v1/ledger/periods/2025-03', orgB.adminKey).expect(200)).body.status).toBe('open');
    expect((await get('/v1/ledger/deferral-schedules', orgB.adminKey).expect(200)).body.data).toEqual([]);
  });

  it('answers bad queries with a 400 naming the field', async () => {
    expect((await get('/v1/ledger/trial-balance').expect(400)).body.error).toMatchObject({ code: 'missing_field', field: 'period' });
    expect((await get('/v1/ledger/trial-balance?period=2025-13').expect(400)).body.error).toMatchObject({ code: 'invalid_value', field: 'period' });
    expect((await get('/v1/ledger/entries?party_id=x').expect(400)).body.error.field).toBe('party_id');
    expect((await get('/v1/ledger/entries?colour=red').expect(400)).body.error.code).toBe('unknown_field');
    expect((await get('/v1/ledger/periods/2025-1').expect(400)).body.error).toMatchObject({ code: 'invalid_period', field: 'period' });
    expect((await get('/v1/ledger/entries?cursor=zzz').expect(400)).body.error.code).toBe('invalid_cursor');
  });
});
