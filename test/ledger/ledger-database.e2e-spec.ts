import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ACCOUNTS, LedgerPeriodsService, LedgerService } from '@closebook/ledger';
import { startApi, type TestApi } from '../helpers/api';
import { accountIds, closeMonth, rawEntry, rawLines } from './ledger-fixtures';

/**
 * The database is the last word: these inserts bypass LedgerService and go straight through the
 * connection, inside a transaction, and the triggers refuse them.
 */
describe('ledger invariants enforced by PostgreSQL', () => {
  let api: TestApi;
  let ledger: LedgerService;
  let periods: LedgerPeriodsService;
  const em = (): EntityManager => api.orm.em.fork() as EntityManager;

  beforeAll(async () => {
    api = await startApi();
    ledger = api.app.get(LedgerService);
    periods = api.app.get(LedgerPeriodsService);
  });
  afterAll(() => api.close());

  const count = async (sql: string, params: unknown[]) => Number((await em().execute(sql, params))[0].n);

  it('refuses an unbalanced entry at commit (deferred constraint trigger), leaving nothing behind', async () => {
    const org = randomUUID();
    const acc = await accountIds(em(), ledger, org);
    let entryId = '';
    await expect(
      em().transactional(async (tx) => {
        entryId = await rawEntry(tx, org, '2025-05-10');
        await rawLines(tx, org, entryId, [
          { accountId: acc[ACCOUNTS.CASH], debit: 10000n, credit: 0n },
          { accountId: acc[ACCOUNTS.REVENUE_SERVICES], debit: 0n, credit: 9000n },
        ]);
      }),
    ).rejects.toThrow(/unbalanced: debits 10000 <> credits 9000/);
    expect(await count('select count(*)::int as n from journal_entries where id = ?', [entryId])).toBe(0);
    expect(await count('select count(*)::int as n from journal_lines where entry_id = ?', [entryId])).toBe(0);
  });

  it('refuses an entry with fewer than two lines, or none', async () => {
    const org = randomUUID();
    const acc = await accountIds(em(), ledger, org);
    await expect(
      em().transactional(async (tx) => {
        const id = await rawEntry(tx, org, '2025-05-10');
        await rawLines(tx, org, id, [{ accountId: acc[ACCOUNTS.CASH], debit: 100n, credit: 0n }]);
      }),
    ).rejects.toThrow(/has 1 line\(s\); an entry needs at least two/);
    await expect(em().transactional((tx) => rawEntry(tx, org, '2025-05-10'))).rejects.toThrow(/has 0 line\(s\)/);
  });

  it('accepts a balanced raw entry (the triggers are not in the way of valid writes)', async () => {
    const org = randomUUID();
    const acc = await accountIds(em(), ledger, org);
    const id = await em().transactional(async (tx) => {
      const entryId = await rawEntry(tx, org, '2025-05-10');
      await rawLines(tx, org, entryId, [
        { accountId: acc[ACCOUNTS.CASH], debit: 5000n, credit: 0n },
        { accountId: acc[ACCOUNTS.REVENUE_SERVICES], debit: 0n, credit: 5000n },
      ]);
      return entryId;
    });
    expect(await count('select count(*)::int as n from journal_lines where entry_id = ?', [id])).toBe(2);
  });

  it('refuses a line with both sides, a negative amount, or nothing', async () => {
    const org = randomUUID();
    const acc = await accountIds(em(), ledger, org);
    for (const [debit, credit] of [
      [100n, 100n],
      [-100n, 0n],
      [0n, 0n],
    ]) {
      await expect(
        em().transactional(async (tx) => {
          const id = await rawEntry(tx, org, '2025-05-10');
          await rawLines(tx, org, id, [
            { accountId: acc[ACCOUNTS.CASH], debit, credit },
            { accountId: acc[ACCOUNTS.REVENUE_SERVICES], debit: credit, credit: debit },
          ]);
        }),
      ).rejects.toThrow(/journal_lines_amounts_check/);
    }
  });

  it('refuses an Accounts receivable line without its customer, and an account of another currency or organization', async () => {
    const org = randomUUID();
    const usd = await accountIds(em(), ledger, org, 'USD');
    const eur = await accountIds(em(), ledger, org, 'EUR');
    const other = await accountIds(em(), ledger, randomUUID(), 'USD');
    const attempt = (lines: { accountId: string; debit: bigint; credit: bigint; partyId?: string }[]) =>
      em().transactional(async (tx) => {
        const id = await rawEntry(tx, org, '2025-05-10', 'USD');
        await rawLines(tx, org, id, lines);
      });
    await expect(
      attempt([
        { accountId: usd[ACCOUNTS.ACCOUNTS_RECEIVABLE], debit: 100n, credit: 0n },
        { accountId: usd[ACCOUNTS.REVENUE_USAGE], debit: 0n, credit: 100n },
      ]),
    ).rejects.toThrow(/account 1100 requires a party_id/);
    await expect(
      attempt([
        { accountId: eur[ACCOUNTS.CASH], debit: 100n, credit: 0n },
        { accountId: usd[ACCOUNTS.REVENUE_USAGE], debit: 0n, credit: 100n },
      ]),
    ).rejects.toThrow(/not an account of the entry's organization and currency \(USD\)/);
    await expect(
      attempt([
        { accountId: other[ACCOUNTS.CASH], debit: 100n, credit: 0n },
        { accountId: usd[ACCOUNTS.REVENUE_USAGE], debit: 0n, credit: 100n },
      ]),
    ).rejects.toThrow(/not an account of the entry's organization/);
  });

  it('refuses any entry or line dated in a closed month', async () => {
    const org = randomUUID();
    const acc = await accountIds(em(), ledger, org);
    // An entry posted in March while it was open…
    const march = await em().transactional(async (tx) => {
      const id = await rawEntry(tx, org, '2025-03-20');
      await rawLines(tx, org, id, [
        { accountId: acc[ACCOUNTS.CASH], debit: 700n, credit: 0n },
        { accountId: acc[ACCOUNTS.REVENUE_SERVICES], debit: 0n, credit: 700n },
      ]);
      return id;
    });
    await closeMonth(em(), periods, org, '2025-03');
    // …then nothing more dated in March: not a new entry…
    await expect(
      em().transactional(async (tx) => {
        const id = await rawEntry(tx, org, '2025-03-31');
        await rawLines(tx, org, id, [
          { accountId: acc[ACCOUNTS.CASH], debit: 100n, credit: 0n },
          { accountId: acc[ACCOUNTS.REVENUE_SERVICES], debit: 0n, credit: 100n },
        ]);
      }),
    ).rejects.toThrow(/accounting period 2025-03 is closed: nothing dated 2025-03-31 can be written/);
    // …nor a line added to the March entry.
    await expect(
      em().transactional((tx) =>
        rawLines(
          tx,
          org,
          march,
          [
            { accountId: acc[ACCOUNTS.CASH], debit: 50n, credit: 0n },
            { accountId: acc[ACCOUNTS.REVENUE_SERVICES], debit: 0n, credit: 50n },
          ],
          3,
        ),
      ),
    ).rejects.toThrow(/accounting period 2025-03 is closed/);
    // April is open.
    await em().transactional(async (tx) => {
      const id = await rawEntry(tx, org, '2025-04-01');
      await rawLines(tx, org, id, [
        { accountId: acc[ACCOUNTS.CASH], debit: 100n, credit: 0n },
        { accountId: acc[ACCOUNTS.REVENUE_SERVICES], debit: 0n, credit: 100n },
      ]);
    });
    // The period row cannot be deleted to unlock the month.
    await expect(em().execute(`delete from accounting_periods where organization_id = ? and period = '2025-03'`, [org])).rejects.toThrow(/append-only/);
  });

  it('refuses UPDATE and DELETE of posted entries and lines, and lines added to a posted entry', async () => {
    const org = randomUUID();
    const customer = randomUUID();
    const posted = await ledger.post(em(), {
      organizationId: org,
      currency: 'USD',
      date: '2025-06-30',
      key: 'invoice:immutable',
      source: { type: 'invoice', id: 'immutable' },
      description: 'Invoice',
      lines: [
        { account_code: ACCOUNTS.ACCOUNTS_RECEIVABLE, party_id: customer, debit: 12400n },
        { account_code: ACCOUNTS.REVENUE_USAGE, party_id: customer, credit: 12400n },
      ],
    });
    await expect(em().execute('update journal_lines set debit = debit + 1 where entry_id = ?', [posted.id])).rejects.toThrow(/journal_lines is append-only: UPDATE refused/);
    await expect(em().execute('delete from journal_lines where entry_id = ?', [posted.id])).rejects.toThrow(/append-only: DELETE refused/);
    await expect(em().execute(`update journal_entries set description = 'x' where id = ?`, [posted.id])).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(em().execute('delete from journal_entries where id = ?', [posted.id])).rejects.toThrow(/append-only: DELETE refused/);
    await expect(em().execute('truncate journal_lines')).rejects.toThrow(/append-only/);
    // Even a balanced pair cannot be appended to a posted entry.
    const acc = await accountIds(em(), ledger, org);
    await expect(
      em().transactional((tx) =>
        rawLines(
          tx,
          org,
          posted.id,
          [
            { accountId: acc[ACCOUNTS.CASH], debit: 100n, credit: 0n },
            { accountId: acc[ACCOUNTS.REVENUE_USAGE], debit: 0n, credit: 100n },
          ],
          3,
        ),
      ),
    ).rejects.toThrow(/is posted: lines are written only with their entry/);
    const again = await ledger.getEntry(em(), org, posted.id);
    expect(again.lines.map((l) => [l.debit, l.credit])).toEqual([
      [12400n, 0n],
      [0n, 12400n],
    ]);
  });

  it('makes a close wait for a posting in flight in that month, and later postings see it closed', async () => {
    const org = randomUUID();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let posted!: () => void;
    const postedSignal = new Promise<void>((r) => (posted = r));
    const input = {
      organizationId: org,
      currency: 'USD',
      date: '2025-02-14',
      source: { type: 'test', id: 'inflight' },
      description: 'in flight',
      lines: [
        { account_code: ACCOUNTS.CASH, debit: 300n },
        { account_code: ACCOUNTS.REVENUE_SERVICES, credit: 300n },
      ],
    };
    await periods.startClosing(em(), org, '2025-02');
    const inflight = em().transactional(async (tx) => {
      const e = await ledger.post(tx, { ...input, key: 'inflight' });
      posted();
      await gate;
      return e;
    });
    await postedSignal;
    let closedAt = 0;
    const closing = periods.close(em(), org, '2025-02').then((s) => {
      closedAt = Date.now();
      return s;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(closedAt).toBe(0); // still waiting for the posting's transaction
    const releasedAt = Date.now();
    release();
    const [entry, state] = await Promise.all([inflight, closing]);
    expect(closedAt).toBeGreaterThanOrEqual(releasedAt);
    expect(entry.date).toBe('2025-02-14');
    expect(state.status).toBe('closed');
    const late = await ledger.post(em(), { ...input, key: 'late' });
    expect(late).toMatchObject({ date: '2025-03-01', correctsPeriod: '2025-02' });
  });
});
