import fc from 'fast-check';
import { Money } from '@closebook/money';
import { addMonths, daysBetween, periodOf } from './dates';
import { recognitionCycles, recognitionShares, recognitionWeights } from './recognition';

const amounts = (shares: { amount: Money }[]) => shares.map((s) => s.amount.format());

describe('recognitionShares', () => {
  it('recognizes a yearly fee of 1,200.00 as 100.00 a month for 12 months', () => {
    const shares = recognitionShares(Money.of('1200.00', 'USD'), '2025-01-01', '2026-01-01');
    expect(shares.map((s) => s.period)).toEqual([
      '2025-01', '2025-02', '2025-03', '2025-04', '2025-05', '2025-06',
      '2025-07', '2025-08', '2025-09', '2025-10', '2025-11', '2025-12',
    ]);
    expect(amounts(shares)).toEqual(Array(12).fill('100.00'));
  });

  it('accepts billing-period instants at 00:00 UTC', () => {
    const shares = recognitionShares(Money.of('1200.00', 'USD'), '2025-01-01T00:00:00.000Z', new Date('2026-01-01T00:00:00Z'));
    expect(amounts(shares)).toEqual(Array(12).fill('100.00'));
    expect(() => recognitionShares(Money.of('10', 'USD'), '2025-01-01T12:00:00Z', '2025-02-01')).toThrow(/00:00 UTC/);
    expect(() => recognitionShares(Money.of('10', 'USD'), new Date('2025-01-01T12:00:00Z'), '2025-02-01')).toThrow(/00:00 UTC/);
  });

  it('gives a partial first month its days, then whole months (a prorated first period ending on the 1st)', () => {
    // Mar 15 → Jan 1: March is 17/31 of a cycle, April..December 9 whole cycles: weights 17/31 and 9 × 1,
    // so 296.00 = 17 + 9 × 31 splits into 17.00 for March and 31.00 for each whole month.
    const total = Money.of('296.00', 'USD');
    const shares = recognitionShares(total, '2025-03-15', '2026-01-01');
    expect(shares[0]).toMatchObject({ period: '2025-03', days: 17 });
    expect(amounts(shares)).toEqual(['17.00', ...Array(9).fill('31.00')]);
    expect(Money.sum(shares.map((s) => s.amount), 'USD').equals(total)).toBe(true);
  });

  it('splits a single mid-month cycle across two months by days', () => {
    const shares = recognitionShares(Money.of('31.00', 'USD'), '2025-01-15', '2025-02-15');
    expect(shares.map((s) => [s.period, s.days, s.amount.format()])).toEqual([
      ['2025-01', 17, '17.00'],
      ['2025-02', 14, '14.00'],
    ]);
  });

  it('a partial period inside one month recognizes everything in that month', () => {
    const shares = recognitionShares(Money.of('12.34', 'USD'), '2025-01-15', '2025-02-01');
    expect(amounts(shares)).toEqual(['12.34']);
  });

  it('gives equal shares to whole cycles anchored mid-month (yearly from Jan 15)', () => {
    const cycles = recognitionCycles('2025-01-15', '2026-01-15');
    expect(cycles).toHaveLength(12);
    expect(cycles.every((c) => c.whole)).toBe(true);
    const shares = recognitionShares(Money.of('1200.00', 'USD'), '2025-01-15', '2026-01-15');
    expect(shares).toHaveLength(13);
    expect(Money.sum(shares.map((s) => s.amount), 'USD').format()).toBe('1200.00');
  });

  it('anchors past a month end on its last day, like billing periods', () => {
    expect(recognitionCycles('2025-01-31', '2025-02-28')).toEqual([
      { start: '2025-01-31', end: '2025-02-28', cycleStart: '2025-01-31', cycleEnd: '2025-02-28', whole: true },
    ]);
    const back = recognitionCycles('2025-02-28', '2025-03-31');
    expect(back).toHaveLength(1);
    expect(back[0].whole).toBe(true);
  });

  it('refuses an empty or inverted period, an unrounded or negative total', () => {
    expect(() => recognitionShares(Money.of('1', 'USD'), '2025-01-01', '2025-01-01')).toThrow(/after/);
    expect(() => recognitionShares(Money.of('1.005', 'USD'), '2025-01-01', '2025-02-01')).toThrow(/rounded/);
    expect(() => recognitionShares(Money.of('-1', 'USD'), '2025-01-01', '2025-02-01')).toThrow(/negative/);
    expect(() => recognitionShares(Money.of('1', 'USD'), '2025-02-30', '2025-03-01')).toThrow(/calendar date/);
  });

  it('uses the currency minor unit (JPY has none)', () => {
    const shares = recognitionShares(Money.of('1000', 'JPY'), '2025-01-01', '2025-04-01');
    expect(amounts(shares)).toEqual(['334', '333', '333']);
  });
});

// ---- properties --------------------------------------------------------------------------------

const dayArb = fc.integer({ min: 0, max: 365 * 6 }).map((n) => {
  const d = new Date(Date.UTC(2023, 0, 1) + n * 86_400_000);
  return d.toISOString().slice(0, 10);
});
const periodArb = fc
  .tuple(dayArb, fc.oneof(fc.integer({ min: 1, max: 800 }), fc.integer({ min: 1, max: 36 }).map((m) => -m)))
  .map(([start, len]) => {
    // Negative lengths: whole monthly cycles from the start; positive: any number of days.
    const end = len < 0 ? addMonths(start, -len) : new Date(Date.parse(`${start}T00:00:00Z`) + len * 86_400_000).toISOString().slice(0, 10);
    return { start, end };
  });
const currencyArb = fc.constantFrom('USD', 'JPY', 'KWD', 'EUR');
const totalArb = fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 15n }), currencyArb).map(([n, c]) => Money.fromMinorUnits(n, c));

describe('recognitionShares (properties)', () => {
  it('shares sum exactly to the total, are never negative and are within one minor unit of their exact share', () => {
    fc.assert(
      fc.property(totalArb, periodArb, (total, { start, end }) => {
        const shares = recognitionShares(total, start, end);
        const sum = Money.sum(
          shares.map((s) => s.amount),
          total.currency,
        );
        expect(sum.equals(total)).toBe(true);
        const unit = Money.fromMinorUnits(1n, total.currency).amount;
        for (const s of shares) {
          expect(s.amount.isNegative()).toBe(false);
          expect(s.amount.amount.minus(s.exact).abs().lt(unit)).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('covers every day of the service period once, in consecutive months', () => {
    fc.assert(
      fc.property(periodArb, ({ start, end }) => {
        const weights = recognitionWeights(start, end);
        expect(weights.reduce((s, w) => s + w.days, 0)).toBe(daysBetween(start, end));
        expect(weights[0].period).toBe(periodOf(start));
        for (let i = 1; i < weights.length; i++) expect(weights[i].period > weights[i - 1].period).toBe(true);
        const cycles = recognitionCycles(start, end);
        expect(cycles[0].start).toBe(start);
        expect(cycles[cycles.length - 1].end).toBe(end);
        for (let i = 1; i < cycles.length; i++) expect(cycles[i].start).toBe(cycles[i - 1].end);
        // At most one partial cycle, and it is the first.
        expect(cycles.slice(1).every((c) => c.whole)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('gives every whole calendar month of a period of whole months the same share (± one minor unit)', () => {
    fc.assert(
      fc.property(totalArb, fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 36 }), (total, m0, n) => {
        const start = addMonths('2023-01-01', m0);
        const shares = recognitionShares(total, start, addMonths(start, n));
        expect(shares).toHaveLength(n);
        const minor = shares.map((s) => s.amount.toMinorUnits());
        const max = minor.reduce((a, b) => (a > b ? a : b));
        const min = minor.reduce((a, b) => (a < b ? a : b));
        expect(max - min <= 1n).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
