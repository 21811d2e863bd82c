import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { Money } from '@closebook/money';
import { ACCOUNTS, STANDARD_CHART } from './chart';
import { normalizeEntry, reversedLines, sameEffect, type PostEntryInput, type PostingLine } from './posting';

const org = randomUUID();
const customer = randomUUID();

const base = (over: Partial<PostEntryInput> = {}): PostEntryInput => ({
  organizationId: org,
  currency: 'USD',
  date: '2025-03-31',
  key: 'invoice:1',
  source: { type: 'invoice', id: '1' },
  description: 'Invoice 1',
  lines: [
    { account_code: ACCOUNTS.ACCOUNTS_RECEIVABLE, party_id: customer, debit: Money.of('124.00', 'USD') },
    { account_code: ACCOUNTS.REVENUE_USAGE, credit: Money.of('75.00', 'USD') },
    { account_code: ACCOUNTS.REVENUE_SUBSCRIPTION, credit: 4900n },
  ],
  ...over,
});

describe('normalizeEntry', () => {
  it('turns amounts into integer minor units, one side per line, numbered', () => {
    const e = normalizeEntry(base());
    expect(e.lines).toEqual([
      { lineNo: 1, accountCode: '1100', partyId: customer, debit: 12400n, credit: 0n, memo: null },
      { lineNo: 2, accountCode: '4100', partyId: null, debit: 0n, credit: 7500n, memo: null },
      { lineNo: 3, accountCode: '4000', partyId: null, debit: 0n, credit: 4900n, memo: null },
    ]);
    expect(e).toMatchObject({ currency: 'USD', date: '2025-03-31', sourceType: 'invoice', sourceId: '1', correctsPeriod: null });
  });

  it('drops zero lines (a zero tax line) but needs two lines left', () => {
    const e = normalizeEntry(base({ lines: [...base().lines, { account_code: ACCOUNTS.TAX_PAYABLE, credit: 0n }] }));
    expect(e.lines).toHaveLength(3);
    expect(() => normalizeEntry(base({ lines: [{ account_code: '1000', debit: 0n }, { account_code: '4000', credit: 0n }] }))).toThrow(
      expect.objectContaining({ code: 'too_few_lines' }),
    );
  });

  it.each([
    ['unbalanced_entry', { lines: [{ account_code: '1000', debit: 100n }, { account_code: '4000', credit: 99n }] }],
    ['both_sides', { lines: [{ account_code: '1000', debit: 100n, credit: 100n }, { account_code: '4000', credit: 0n }] }],
    ['negative_amount', { lines: [{ account_code: '1000', debit: -100n }, { account_code: '4000', credit: -100n }] }],
    ['unknown_account', { lines: [{ account_code: '9999', debit: 100n }, { account_code: '4000', credit: 100n }] }],
    ['party_required', { lines: [{ account_code: '1100', debit: 100n }, { account_code: '4000', credit: 100n }] }],
    ['currency_mismatch', { lines: [{ account_code: '1000', debit: Money.of('1', 'EUR') }, { account_code: '4000', credit: 100n }] }],
    ['not_rounded', { lines: [{ account_code: '1000', debit: Money.of('1.005', 'USD') }, { account_code: '4000', credit: 100n }] }],
    ['invalid_date', { date: '2025-02-29' }],
    ['unknown_currency', { currency: 'usd' }],
    ['missing_field', { key: '  ' }],
    ['invalid_period', { correctsPeriod: '2025-13' }],
  ] as [string, Partial<PostEntryInput>][])('refuses %s', (code, over) => {
    expect(() => normalizeEntry(base(over))).toThrow(expect.objectContaining({ code }));
  });

  it('compares effects ignoring the date and description', () => {
    const a = normalizeEntry(base());
    expect(sameEffect(a, normalizeEntry(base({ date: '2025-04-01', description: 'other' })))).toBe(true);
    expect(sameEffect(a, normalizeEntry(base({ lines: [...base().lines.slice(0, 2), { account_code: '4200', credit: 4900n }] })))).toBe(false);
    const r = reversedLines(a.lines);
    expect(r[0]).toMatchObject({ debit: 0n, credit: 12400n });
  });
});

describe('normalizeEntry (properties)', () => {
  const codes = STANDARD_CHART.map((a) => a.code);
  const legArb = fc.record({
    debit: fc.constantFrom(...codes),
    credit: fc.constantFrom(...codes),
    amount: fc.bigInt({ min: 0n, max: 10n ** 12n }),
  });

  it('every entry it accepts balances and has one positive side per line; unbalanced input is refused', () => {
    fc.assert(
      fc.property(fc.array(legArb, { minLength: 1, maxLength: 8 }), fc.bigInt({ min: -5n, max: 5n }), (legs, skew) => {
        const lines: PostingLine[] = legs.flatMap((l): PostingLine[] => [
          { account_code: l.debit, party_id: customer, debit: l.amount },
          { account_code: l.credit, party_id: customer, credit: l.amount },
        ]);
        if (skew !== 0n && lines.length) {
          const last = lines[lines.length - 1];
          const credit = (last.credit as bigint) + skew;
          lines[lines.length - 1] = { ...last, credit: credit < 0n ? 0n : credit };
        }
        let e;
        try {
          e = normalizeEntry(base({ lines }));
        } catch (err) {
          expect(['unbalanced_entry', 'too_few_lines']).toContain((err as { code: string }).code);
          return;
        }
        const d = e.lines.reduce((s, l) => s + l.debit, 0n);
        const c = e.lines.reduce((s, l) => s + l.credit, 0n);
        expect(d).toBe(c);
        expect(e.lines.length).toBeGreaterThanOrEqual(2);
        for (const l of e.lines) expect((l.debit > 0n) !== (l.credit > 0n)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
