import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Money } from '@closebook/money';
import {
  ACCOUNTS,
  LedgerPeriodsService,
  LedgerReportsService,
  LedgerService,
  STANDARD_CHART,
  firstDay,
  addPeriods,
  type PostEntryInput,
  type PostingLine,
} from '@closebook/ledger';
import { startApi, type TestApi } from '../helpers/api';
import { closeMonth } from './ledger-fixtures';

describe('LedgerService against PostgreSQL', () => {
  let api: TestApi;
  let ledger: LedgerService;
  let periods: LedgerPeriodsService;
  let reports: LedgerReportsService;
  const em = (): EntityManager => api.orm.em.fork() as EntityManager;

  beforeAll(async () => {
    api = await startApi();
    ledger = api.app.get(LedgerService);
    periods = api.app.get(LedgerPeriodsService);
    reports = api.app.get(LedgerReportsService);
  });
  afterAll(() => api.close());

  const invoice = (org: string, customer: string, over: Partial<PostEntryInput> = {}): PostEntryInput => ({
    organizationId: org,
    currency: 'USD',
    date: '2025-04-30',
    key: `invoice:${randomUUID()}`,
    source: { type: 'invoice', id: randomUUID() },
    description: 'Invoice for April',
    lines: [
      { account_code: ACCOUNTS.ACCOUNTS_RECEIVABLE, party_id: customer, debit: Money.of('124.00', 'USD') },
      { account_code: ACCOUNTS.REVENUE_SUBSCRIPTION, credit: Money.of('49.00', 'USD') },
      { account_code: ACCOUNTS.REVENUE_USAGE, credit: Money.of('75.00', 'USD') },
      { account_code: ACCOUNTS.TAX_PAYABLE, credit: Money.of('0.00', 'USD') },
    ],
    ...over,
  });

  it('posts a balanced entry in minor units, creating the chart on first use of the currency', async () => {
    const org = randomUUID();
    const customer = randomUUID();
    const e = await ledger.post(em(), invoice(org, customer));
    expect(e).toMatchObject({ created: true, currency: 'USD', date: '2025-04-30', correctsPeriod: null, reversesEntryId: null });
    expect(e.lines.map((l) => [l.accountCode, l.partyId, l.debit, l.credit])).toEqual([
      ['1100', customer, 12400n, 0n],
      ['4000', null, 0n, 4900n],
      ['4100', null, 0n, 7500n],
    ]);
    const accounts = await reports.accounts(em(), org);
    expect(accounts.map((a) => a.code)).toEqual(STANDARD_CHART.map((a) => a.code));
    expect(accounts.find((a) => a.code === '1100')).toMatchObject({ requiresParty: true, normalBalance: 'debit', balance: Money.of('124', 'USD') });
    // ensureChart is idempotent
    await ledger.ensureChart(em(), org, 'USD');
    expect((await reports.accounts(em(), org)).length).toBe(STANDARD_CHART.length);
  });

  it('posting the same key twice (even concurrently) is one entry; the same key with other lines is a 409', async () => {
    const org = randomUUID();
    const input = invoice(org, randomUUID());
    const [a, b] = await Promise.all([ledger.post(em(), input), ledger.post(em(), input)]);
    const c = await ledger.post(em(), { ...input, description: 'retried', date: '2025-05-02' });
    expect(new Set([a.id, b.id, c.id]).size).toBe(1);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(c.created).toBe(false);
    expect(c.date).toBe('2025-04-30');
    const [{ n }] = await em().execute('select count(*)::int as n from journal_entries where organization_id = ?', [org]);
    expect(n).toBe(1);
    const changed = { ...input, lines: [input.lines[0], { account_code: ACCOUNTS.REVENUE_USAGE, credit: 12400n }] };
    await expect(ledger.post(em(), changed)).rejects.toMatchObject({ status: 409, code: 'ledger_key_conflict' });
  });

  it('commits with the caller’s transaction, and rolls back with it', async () => {
    const org = randomUUID();
    const input = invoice(org, randomUUID());
    await expect(
      em().transactional(async (tx) => {
        await ledger.post(tx, input);
        throw new Error('the invoice failed to finalize');
      }),
    ).rejects.toThrow('the invoice failed to finalize');
    expect(await ledger.findByKey(em(), org, input.key)).toBeNull();
    await em().transactional((tx) => ledger.post(tx, input));
    expect(await ledger.findByKey(em(), org, input.key)).not.toBeNull();
  });

  it('refuses an unbalanced entry or an AR line without its customer with a 400 naming the field, writing nothing', async () => {
    const org = randomUUID();
    await expect(
      ledger.post(em(), invoice(org, randomUUID(), { lines: [{ account_code: '1000', debit: 100n }, { account_code: '4000', credit: 90n }] })),
    ).rejects.toMatchObject({ code: 'unbalanced_entry', field: 'lines' });
    await expect(
      ledger.post(em(), invoice(org, randomUUID(), { lines: [{ account_code: '1100', debit: 100n }, { account_code: '4000', credit: 100n }] })),
    ).rejects.toMatchObject({ code: 'party_required', field: 'lines[0].party_id' });
    const [{ n }] = await em().execute('select count(*)::int as n from journal_entries where organization_id = ?', [org]);
    expect(n).toBe(0);
  });

  it('dates a late posting into a closed month in the first open month, recording the month it corrects', async () => {
    const org = randomUUID();
    const customer = randomUUID();
    await ledger.post(em(), invoice(org, customer, { date: '2025-01-15' }));
    await closeMonth(em(), periods, org, '2025-01');
    const late = await ledger.post(em(), invoice(org, customer, { date: '2025-01-20' }));
    expect(late).toMatchObject({ date: '2025-02-01', correctsPeriod: '2025-01', created: true });
    // Two closed months in a row: it lands after both.
    await closeMonth(em(), periods, org, '2025-02');
    const later = await ledger.post(em(), invoice(org, customer, { date: '2025-01-31' }));
    expect(later).toMatchObject({ date: '2025-03-01', correctsPeriod: '2025-01' });
    // A posting that names the month it corrects keeps it.
    const adj = await ledger.post(em(), invoice(org, customer, { date: '2025-03-05', correctsPeriod: '2024-12' }));
    expect(adj).toMatchObject({ date: '2025-03-05', correctsPeriod: '2024-12' });
    // The closed months' trial balances did not move.
    const jan = await reports.trialBalance(em(), org, '2025-01');
    expect(jan.status).toBe('closed');
    expect(jan.currencies[0].accounts.find((a) => a.code === '1100')!.debits.format()).toBe('124.00');
    const mar = await reports.trialBalance(em(), org, '2025-03');
    expect(mar.currencies[0].accounts.find((a) => a.code === '1100')!.debits.format()).toBe('248.00');
  });

  it('enforces the period lifecycle: open → closing → closed, in order, after the month ends; reopen is audited', async () => {
    const org = randomUUID();
    await ledger.post(em(), invoice(org, randomUUID(), { date: '2025-05-10' }));
    await ledger.post(em(), invoice(org, randomUUID(), { date: '2025-06-10' }));
    await expect(periods.close(em(), org, '2025-06')).rejects.toMatchObject({ status: 422, code: 'period_not_closing' });
    await periods.startClosing(em(), org, '2025-06');
    await expect(periods.close(em(), org, '2025-06')).rejects.toMatchObject({ status: 422, code: 'earlier_period_open' });
    await closeMonth(em(), periods, org, '2025-05');
    const june = await periods.close(em(), org, '2025-06');
    expect(june.status).toBe('closed');
    expect((await periods.close(em(), org, '2025-06')).status).toBe('closed'); // idempotent
    await expect(periods.startClosing(em(), org, '2025-06')).rejects.toMatchObject({ code: 'period_closed' });
    await expect(periods.reopen(em(), org, '2025-05', 'fix')).rejects.toMatchObject({ code: 'later_period_closed' });
    await expect(periods.reopen(em(), org, '2025-06', ' ')).rejects.toMatchObject({ code: 'missing_field' });
    const reopened = await periods.reopen(em(), org, '2025-06', 'missed a credit note');
    expect(reopened).toMatchObject({ status: 'open', reopenReason: 'missed a credit note' });
    const onTime = await ledger.post(em(), invoice(org, randomUUID(), { date: '2025-06-30' }));
    expect(onTime).toMatchObject({ date: '2025-06-30', correctsPeriod: null });
    const future = addPeriods(new Date().toISOString().slice(0, 7), 1);
    await periods.startClosing(em(), org, future);
    await expect(periods.close(em(), org, future)).rejects.toMatchObject({ code: 'period_not_ended' });
    const audit = await em().execute<{ action: string }[]>(`select action from audit_log where organization_id = ? and resource_type = 'accounting_period' order by created_at`, [org]);
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining(['ledger.period.closing_started', 'ledger.period.closed', 'ledger.period.reopened']),
    );
  });

  it('reverses an entry once, with swapped sides and a link to it; not before it; into the open month when closed', async () => {
    const org = randomUUID();
    const customer = randomUUID();
    const original = await ledger.post(em(), invoice(org, customer, { date: '2025-07-31' }));
    await expect(ledger.reverse(em(), { organizationId: org, entryId: original.id, date: '2025-07-01', reason: 'x' })).rejects.toMatchObject({
      code: 'reversal_before_original',
    });
    const r = await ledger.reverse(em(), { organizationId: org, entryId: original.id, date: '2025-08-05', reason: 'invoice voided' });
    expect(r).toMatchObject({ reversesEntryId: original.id, key: `reversal:${original.id}`, date: '2025-08-05', sourceType: 'invoice', sourceId: original.sourceId });
    expect(r.lines.map((l) => [l.accountCode, l.debit, l.credit])).toEqual(original.lines.map((l) => [l.accountCode, l.credit, l.debit]));
    const again = await ledger.reverse(em(), { organizationId: org, entryId: original.id, date: '2025-08-09', reason: 'again' });
    expect(again.id).toBe(r.id);
    expect(again.created).toBe(false);
    await expect(ledger.reverse(em(), { organizationId: randomUUID(), entryId: original.id, date: '2025-08-05', reason: 'x' })).rejects.toMatchObject({
      status: 404,
    });
    expect((await reports.accountBalance(em(), org, 'USD', ACCOUNTS.ACCOUNTS_RECEIVABLE)).isZero()).toBe(true);
    // A reversal dated in a closed month lands in the first open month.
    const other = await ledger.post(em(), invoice(org, customer, { date: '2025-09-10' }));
    await closeMonth(em(), periods, org, '2025-07');
    await closeMonth(em(), periods, org, '2025-08');
    await closeMonth(em(), periods, org, '2025-09');
    const late = await ledger.reverse(em(), { organizationId: org, entryId: other.id, date: '2025-09-30', reason: 'credit note' });
    expect(late).toMatchObject({ date: '2025-10-01', correctsPeriod: '2025-09', reversesEntryId: other.id });
  });

  it('accrues unbilled usage at month end and reverses it when the invoice posts (once)', async () => {
    const org = randomUUID();
    const customer = randomUUID();
    const accrual = await ledger.accrue(em(), {
      organizationId: org,
      key: 'usage:sub-1:2025-09',
      date: '2025-09-30',
      amount: Money.of('40.00', 'USD'),
      party: customer,
    });
    expect(accrual!.lines.map((l) => [l.accountCode, l.partyId, l.debit, l.credit])).toEqual([
      [ACCOUNTS.UNBILLED_RECEIVABLES, customer, 4000n, 0n],
      [ACCOUNTS.REVENUE_USAGE, customer, 0n, 4000n],
    ]);
    expect(await ledger.accrue(em(), { organizationId: org, key: 'zero', date: '2025-09-30', amount: Money.zero('USD'), party: customer })).toBeNull();
    const sept = await reports.trialBalance(em(), org, '2025-09');
    expect(sept.currencies[0].accounts.find((a) => a.code === ACCOUNTS.REVENUE_USAGE)!.closing.format()).toBe('-40.00');
    const reversal = await ledger.reverseAccrual(em(), { organizationId: org, key: 'usage:sub-1:2025-09', date: '2025-10-14' });
    expect(reversal).toMatchObject({ reversesEntryId: accrual!.id, date: '2025-10-14' });
    expect((await ledger.reverseAccrual(em(), { organizationId: org, key: 'usage:sub-1:2025-09', date: '2025-10-15' }))!.id).toBe(reversal!.id);
    expect(await ledger.reverseAccrual(em(), { organizationId: org, key: 'never-accrued', date: '2025-10-14' })).toBeNull();
    expect((await reports.accountBalance(em(), org, 'USD', ACCOUNTS.UNBILLED_RECEIVABLES)).isZero()).toBe(true);
    expect((await reports.accountBalance(em(), org, 'USD', ACCOUNTS.UNBILLED_RECEIVABLES, { asOf: '2025-09-30' })).format()).toBe('40.00');
  });

  it('reverses many entries and accruals at once exactly as one by one; a bad one fails the call', async () => {
    const org = randomUUID();
    const customer = randomUUID();
    const [a, b, c] = await ledger.postMany(em(), [invoice(org, customer, { date: '2025-05-31' }), invoice(org, customer, { date: '2025-05-31' }), invoice(org, customer, { date: '2025-05-31' })]);
    const first = await ledger.reverse(em(), { organizationId: org, entryId: a.id, date: '2025-06-02', reason: 'one' });
    const many = await ledger.reverseMany(em(), [
      { organizationId: org, entryId: a.id, date: '2025-06-03', reason: 'again' },
      { organizationId: org, entryId: b.id, date: '2025-06-03', reason: 'two' },
      { organizationId: org, entryId: c.id, date: '2025-06-04', reason: 'three' },
    ]);
    expect(many.map((r) => [r.id === first.id, r.created, r.key, r.date])).toEqual([
      [true, false, `reversal:${a.id}`, '2025-06-02'],
      [false, true, `reversal:${b.id}`, '2025-06-03'],
      [false, true, `reversal:${c.id}`, '2025-06-04'],
    ]);
    expect(many[2].lines.map((l) => [l.accountCode, l.debit, l.credit])).toEqual(c.lines.map((l) => [l.accountCode, l.credit, l.debit]));
    const audit = await em().execute<{ n: number }[]>(`select count(*)::int as n from audit_log where organization_id = ? and action = 'ledger.entry.reversed'`, [org]);
    expect(audit[0].n).toBe(3);
    // One refused reversal (dated before its entry) writes none of them.
    const [d, e] = await ledger.postMany(em(), [invoice(org, customer, { date: '2025-07-31' }), invoice(org, customer, { date: '2025-05-31' })]);
    await expect(
      ledger.reverseMany(em(), [
        { organizationId: org, entryId: e.id, date: '2025-06-10', reason: 'fine' },
        { organizationId: org, entryId: d.id, date: '2025-07-01', reason: 'too early' },
      ]),
    ).rejects.toMatchObject({ code: 'reversal_before_original' });
    expect(await ledger.findByKey(em(), org, `reversal:${e.id}`)).toBeNull();
    // Accruals: found ones reversed, unknown keys null, in input order.
    for (const k of ['usage:p1:2025-05', 'usage:p2:2025-05']) {
      await ledger.accrue(em(), { organizationId: org, key: k, date: '2025-05-31', amount: Money.of('5.00', 'USD'), party: customer });
    }
    const reversed = await ledger.reverseAccruals(em(), [
      { organizationId: org, key: 'usage:p2:2025-05', date: '2025-06-05' },
      { organizationId: org, key: 'never', date: '2025-06-05' },
      { organizationId: org, key: 'usage:p1:2025-05', date: '2025-06-05', reason: 'usage invoiced on INV-1' },
    ]);
    expect(reversed.map((r) => r && [r.created, r.description])).toEqual([
      [true, 'Reversal of "Unbilled usage accrued at month end (usage:p2:2025-05)": usage invoiced'],
      null,
      [true, 'Reversal of "Unbilled usage accrued at month end (usage:p1:2025-05)": usage invoiced on INV-1'],
    ]);
    expect((await reports.accountBalance(em(), org, 'USD', ACCOUNTS.UNBILLED_RECEIVABLES)).isZero()).toBe(true);
  });

  describe('properties (fast-check, real PostgreSQL)', () => {
    const codes = STANDARD_CHART.map((a) => a.code);
    const currencies = ['USD', 'JPY'];
    const parties = [randomUUID(), randomUUID(), randomUUID()];
    const legArb = fc.record({
      debit: fc.constantFrom(...codes),
      credit: fc.constantFrom(...codes),
      amount: fc.bigInt({ min: 1n, max: 10n ** 10n }),
      debitParty: fc.option(fc.constantFrom(...parties), { nil: null }),
      creditParty: fc.option(fc.constantFrom(...parties), { nil: null }),
    });
    const opArb = fc.record({
      currency: fc.constantFrom(...currencies),
      day: fc.integer({ min: 0, max: 364 }),
      legs: fc.array(legArb, { minLength: 1, maxLength: 4 }),
      repeat: fc.boolean(),
    });
    const dateOf = (day: number) => new Date(Date.UTC(2025, 0, 1) + day * 86_400_000).toISOString().slice(0, 10);
    const needsParty = (code: string) => code === ACCOUNTS.ACCOUNTS_RECEIVABLE;

    interface ModelLine {
      currency: string;
      date: string;
      code: string;
      party: string | null;
      debit: bigint;
      credit: bigint;
    }

    it('every entry balances; the trial balance sums to zero, rolls forward, matches the postings, and the AR sub-ledger ties; repeats are one entry', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 10 }), fc.integer({ min: 0, max: 11 }), async (ops, month) => {
          const org = randomUUID();
          const model: ModelLine[] = [];
          const keys = new Set<string>();
          for (const [i, op] of ops.entries()) {
            const lines: PostingLine[] = op.legs.flatMap((l): PostingLine[] => [
              { account_code: l.debit, party_id: needsParty(l.debit) ? (l.debitParty ?? parties[0]) : l.debitParty, debit: l.amount },
              { account_code: l.credit, party_id: needsParty(l.credit) ? (l.creditParty ?? parties[1]) : l.creditParty, credit: l.amount },
            ]);
            const input: PostEntryInput = {
              organizationId: org,
              currency: op.currency,
              date: dateOf(op.day),
              key: `op:${i}`,
              source: { type: 'test', id: String(i) },
              description: `op ${i}`,
              lines,
            };
            const e = await ledger.post(em(), input);
            expect(e.created).toBe(true);
            expect(e.lines.reduce((s, l) => s + l.debit, 0n)).toBe(e.lines.reduce((s, l) => s + l.credit, 0n));
            keys.add(input.key);
            for (const l of e.lines) model.push({ currency: op.currency, date: e.date, code: l.accountCode, party: l.partyId, debit: l.debit, credit: l.credit });
            if (op.repeat) {
              const again = await ledger.post(em(), input);
              expect(again).toMatchObject({ id: e.id, created: false });
            }
          }
          // Posting twice is one entry; every stored entry balances with ≥ 2 lines.
          const stored = await em().execute<{ n: number }[]>('select count(*)::int as n from journal_entries where organization_id = ?', [org]);
          expect(stored[0].n).toBe(keys.size);
          const bad = await em().execute(
            `select entry_id from journal_lines where organization_id = ? group by entry_id having sum(debit) <> sum(credit) or count(*) < 2`,
            [org],
          );
          expect(bad).toEqual([]);

          const period = `2025-${String(month + 1).padStart(2, '0')}`;
          const start = firstDay(period);
          const end = firstDay(addPeriods(period, 1));
          const tb = await reports.trialBalance(em(), org, period);
          for (const c of tb.currencies) {
            expect(c.totals.opening.isZero()).toBe(true);
            expect(c.totals.closing.isZero()).toBe(true);
            expect(c.totals.debits.equals(c.totals.credits)).toBe(true);
            expect(c.balanced).toBe(true);
            for (const a of c.accounts) {
              expect(a.closing.equals(a.opening.plus(a.debits).minus(a.credits))).toBe(true);
              const mine = model.filter((l) => l.currency === c.currency && l.code === a.code);
              const opening = mine.filter((l) => l.date < start).reduce((s, l) => s + l.debit - l.credit, 0n);
              const inMonth = mine.filter((l) => l.date >= start && l.date < end);
              expect(a.opening.toMinorUnits()).toBe(opening);
              expect(a.debits.toMinorUnits()).toBe(inMonth.reduce((s, l) => s + l.debit, 0n));
              expect(a.credits.toMinorUnits()).toBe(inMonth.reduce((s, l) => s + l.credit, 0n));
            }
            const ar = c.subLedgers.find((s) => s.accountCode === ACCOUNTS.ACCOUNTS_RECEIVABLE)!;
            expect(ar.tiesToControl).toBe(true);
            const control = c.accounts.find((a) => a.code === ACCOUNTS.ACCOUNTS_RECEIVABLE)!;
            expect(ar.total.closing.equals(control.closing)).toBe(true);
            for (const p of ar.parties) {
              const mine = model.filter((l) => l.currency === c.currency && l.code === ACCOUNTS.ACCOUNTS_RECEIVABLE && l.party === p.partyId && l.date < end);
              expect(p.closing.toMinorUnits()).toBe(mine.reduce((s, l) => s + l.debit - l.credit, 0n));
            }
          }
          expect(tb.currencies.map((c) => c.currency).sort()).toEqual([...new Set(model.map((l) => l.currency))].sort());
        }),
        { numRuns: 25 },
      );
    });
  });
});
