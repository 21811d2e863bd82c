import { RatingError } from './errors';
import { prorationFactor, spanFactor } from './proration';

const D = (s: string) => Date.parse(s);

describe('prorationFactor', () => {
  it('counts whole UTC days from the start of the effective day, inclusive', () => {
    // April has 30 days; a change at 2024-04-21 15:30 UTC applies from Apr 21 00:00: 21..30 = 10 days.
    const f = prorationFactor('2024-04-21T15:30:00Z', '2024-04-01T00:00:00Z', '2024-05-01T00:00:00Z');
    expect(f.daysRemaining).toBe(10);
    expect(f.daysInPeriod).toBe(30);
    expect(f.label).toBe('10/30 days');
    expect(f.factor.toFixed(5)).toBe('0.33333');
    expect(f.from).toBe('2024-04-21T00:00:00.000Z');
    expect(f.to).toBe('2024-05-01T00:00:00.000Z');
  });

  it('uses the UTC day of instants given with an offset', () => {
    // 2024-04-21T01:00+02:00 is Apr 20 23:00 UTC → applies from Apr 20: 11 days.
    expect(prorationFactor('2024-04-21T01:00:00+02:00', '2024-04-01T00:00:00Z', '2024-05-01T00:00:00Z').label).toBe('11/30 days');
  });

  it('first day = whole period, last day = 1 day; exact when the fraction terminates', () => {
    expect(prorationFactor('2024-04-01T00:00:00Z', '2024-04-01T00:00:00Z', '2024-05-01T00:00:00Z').factor.toFixed()).toBe('1');
    expect(prorationFactor('2024-04-30T23:59:59Z', '2024-04-01T00:00:00Z', '2024-05-01T00:00:00Z').label).toBe('1/30 days');
    expect(prorationFactor('2024-02-15T00:00:00Z', '2024-02-01T00:00:00Z', '2024-03-01T00:00:00Z').label).toBe('15/29 days');
    expect(prorationFactor('2023-02-15T00:00:00Z', '2023-02-01T00:00:00Z', '2023-03-01T00:00:00Z').factor.toFixed()).toBe('0.5');
  });

  it('refuses effective days outside the period and non-midnight bounds', () => {
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as RatingError).code;
      }
      return null;
    };
    expect(code(() => prorationFactor('2024-05-01T00:00:00Z', '2024-04-01T00:00:00Z', '2024-05-01T00:00:00Z'))).toBe('effective_outside_period');
    expect(code(() => prorationFactor('2024-03-31T23:00:00Z', '2024-04-01T00:00:00Z', '2024-05-01T00:00:00Z'))).toBe('effective_outside_period');
    expect(code(() => prorationFactor('2024-04-10T00:00:00Z', '2024-04-01T06:00:00Z', '2024-05-01T00:00:00Z'))).toBe('period_not_midnight');
    expect(code(() => prorationFactor('yesterday', '2024-04-01T00:00:00Z', '2024-05-01T00:00:00Z'))).toBe('invalid_instant');
  });

  it('spanFactor covers a segment inside a period', () => {
    const f = spanFactor(D('2024-04-11T00:00:00Z'), D('2024-04-21T00:00:00Z'), D('2024-04-01T00:00:00Z'), D('2024-05-01T00:00:00Z'));
    expect(f.label).toBe('10/30 days');
  });
});
