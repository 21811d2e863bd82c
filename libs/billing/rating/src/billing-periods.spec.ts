import fc from 'fast-check';
import {
  feeYearContaining,
  firstPeriod,
  nextPeriod,
  opensFeeYear,
  periodContaining,
  periodDays,
  periodsFrom,
  previousPeriod,
} from './billing-periods';

const d = (s: string) => `${s}T00:00:00.000Z`;
const span = (p: { start: string; end: string }) => `${p.start.slice(0, 10)}..${p.end.slice(0, 10)}`;

describe('periodContaining / nextPeriod', () => {
  it('anchor 1 (default): calendar months, leap February', () => {
    expect(span(periodContaining(1, '2024-02-15T12:00:00Z'))).toBe('2024-02-01..2024-03-01');
    expect(periodDays(periodContaining(1, '2024-02-15T12:00:00Z'))).toBe(29);
    expect(periodDays(periodContaining(1, '2023-02-15T12:00:00Z'))).toBe(28);
    expect(span(periodContaining(1, '2024-12-31T23:59:59Z'))).toBe('2024-12-01..2025-01-01');
    expect(span(periodContaining(1, '2025-01-01T00:00:00Z'))).toBe('2025-01-01..2025-02-01');
  });

  it('anchor 31 falls on the last day of shorter months and comes back', () => {
    const seq = periodsFrom('2024-01-31T00:00:00Z', 31, 6).map(span);
    expect(seq).toEqual([
      '2024-01-31..2024-02-29',
      '2024-02-29..2024-03-31',
      '2024-03-31..2024-04-30',
      '2024-04-30..2024-05-31',
      '2024-05-31..2024-06-30',
      '2024-06-30..2024-07-31',
    ]);
    expect(span(periodContaining(31, '2023-03-01T00:00:00Z'))).toBe('2023-02-28..2023-03-31');
  });

  it('anchors 29 and 30 around February in leap and common years', () => {
    expect(span(periodContaining(29, '2024-02-29T00:00:00Z'))).toBe('2024-02-29..2024-03-29');
    expect(span(periodContaining(29, '2023-02-28T10:00:00Z'))).toBe('2023-02-28..2023-03-29');
    expect(span(periodContaining(29, '2023-02-27T10:00:00Z'))).toBe('2023-01-29..2023-02-28');
    expect(span(periodContaining(30, '2024-03-01T00:00:00Z'))).toBe('2024-02-29..2024-03-30');
    expect(span(periodContaining(30, '2025-02-28T00:00:00Z'))).toBe('2025-02-28..2025-03-30');
  });

  it('anchor 15 across a year end', () => {
    const p = periodContaining(15, '2024-12-20T00:00:00Z');
    expect(span(p)).toBe('2024-12-15..2025-01-15');
    expect(span(nextPeriod(p, 15))).toBe('2025-01-15..2025-02-15');
    expect(span(previousPeriod(p, 15))).toBe('2024-11-15..2024-12-15');
  });

  it('property: consecutive periods tile time, each 28..31 days, each start on the anchor (or the month end)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 31 }), fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2090, 0, 1) }), (anchor, ms) => {
        const p = periodContaining(anchor, new Date(ms).toISOString());
        expect(Date.parse(p.start) <= ms && ms < Date.parse(p.end)).toBe(true);
        const n = nextPeriod(p, anchor);
        expect(n.start).toBe(p.end);
        expect(periodDays(p)).toBeGreaterThanOrEqual(28);
        expect(periodDays(p)).toBeLessThanOrEqual(31);
        const s = new Date(p.start);
        const last = new Date(Date.UTC(s.getUTCFullYear(), s.getUTCMonth() + 1, 0)).getUTCDate();
        expect(s.getUTCDate()).toBe(Math.min(anchor, last));
      }),
      { numRuns: 300 },
    );
  });
});

describe('firstPeriod', () => {
  it('a mid-cycle start is prorated up to the next anchor', () => {
    const fp = firstPeriod('2024-04-21T09:00:00Z', 1);
    expect(span(fp.period)).toBe('2024-04-21..2024-05-01');
    expect(span(fp.cycle)).toBe('2024-04-01..2024-05-01');
    expect(fp.prorated).toBe(true);
    expect(fp.proration.label).toBe('10/30 days');
  });

  it('a start on the anchor day is a full first period', () => {
    const fp = firstPeriod('2024-02-29T18:00:00Z', 31);
    expect(span(fp.period)).toBe('2024-02-29..2024-03-31');
    expect(fp.prorated).toBe(false);
    expect(fp.proration.factor.toFixed()).toBe('1');
  });
});

describe('yearly fee periods', () => {
  it('12 monthly cycles from the start; only the first cycle of each opens the fee year', () => {
    const start = '2024-03-01T00:00:00Z';
    const fy = feeYearContaining(start, 1, '2024-11-20T00:00:00Z');
    expect(span(fy.period)).toBe('2024-03-01..2025-03-01');
    expect(fy.prorated).toBe(false);
    const periods = periodsFrom(start, 1, 25);
    expect(periods.map((p, i) => (opensFeeYear(start, 1, p) ? i : -1)).filter((i) => i >= 0)).toEqual([0, 12, 24]);
    expect(span(feeYearContaining(start, 1, d('2025-03-01')).period)).toBe('2025-03-01..2026-03-01');
  });

  it('a mid-cycle start makes a partial first year that still renews on the anchor', () => {
    const fy = feeYearContaining('2024-03-16T00:00:00Z', 1, '2024-03-20T00:00:00Z');
    expect(span(fy.period)).toBe('2024-03-16..2025-03-01');
    expect(span(fy.full)).toBe('2024-03-01..2025-03-01');
    expect(fy.prorated).toBe(true);
    expect(fy.proration.label).toBe('350/365 days');
    expect(opensFeeYear('2024-03-16T00:00:00Z', 1, { start: d('2024-03-16'), end: d('2024-04-01') })).toBe(true);
    expect(opensFeeYear('2024-03-16T00:00:00Z', 1, { start: d('2025-03-01'), end: d('2025-04-01') })).toBe(true);
    expect(opensFeeYear('2024-03-16T00:00:00Z', 1, { start: d('2024-04-01'), end: d('2024-05-01') })).toBe(false);
  });

  it('a leap year of cycles has 366 days', () => {
    expect(feeYearContaining('2024-01-31T00:00:00Z', 31, '2024-06-01T00:00:00Z').proration.daysInPeriod).toBe(366);
  });
});
