import fc from 'fast-check';
import { dec } from '@closebook/money';
import { DEFAULT_TOLERANCES, toleranceIssue, toleranceStatusSql, withinTolerance, type Tolerance } from './tolerance';

const decimal = fc.tuple(fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.integer({ min: 0, max: 99 })).map(([i, f]) => `${i}.${String(f).padStart(2, '0')}`);
const bound = fc.option(fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 99 })).map(([i, f]) => `${i}.${String(f).padStart(2, '0')}`), { nil: null });
const tolerance = fc.record({ absolute: bound, percent: bound, mode: fc.constantFrom('both' as const, 'either' as const) });

describe('withinTolerance', () => {
  it('exact when nothing is configured', () => {
    const t: Tolerance = { absolute: null, percent: null, mode: 'both' };
    expect(withinTolerance('10', '0', t)).toBe(true);
    expect(withinTolerance('10', '0.01', t)).toBe(false);
  });

  it('worked cases: both and either', () => {
    const both: Tolerance = { absolute: '5', percent: '10', mode: 'both' };
    const either: Tolerance = { ...both, mode: 'either' };
    // variance 8 on 100: within 10 % but over 5 absolute.
    expect(withinTolerance('100', '8', both)).toBe(false);
    expect(withinTolerance('100', '8', either)).toBe(true);
    // variance 4 on 100: within both.
    expect(withinTolerance('100', '-4', both)).toBe(true);
    // variance 12 on 100: within neither.
    expect(withinTolerance('100', '12', either)).toBe(false);
    // prior 0: the percentage bound admits no change at all.
    expect(withinTolerance('0', '1', { absolute: null, percent: '25', mode: 'both' })).toBe(false);
    // flux default: 25 % or 1,000.
    expect(withinTolerance('100', '900', DEFAULT_TOLERANCES.flux)).toBe(true);
    expect(withinTolerance('10000', '2000', DEFAULT_TOLERANCES.flux)).toBe(true);
    expect(withinTolerance('1000', '1500', DEFAULT_TOLERANCES.flux)).toBe(false);
  });

  it('is symmetric in the sign of the variance and of expected', () => {
    fc.assert(
      fc.property(decimal, decimal, tolerance, (e, v, t) => {
        const r = withinTolerance(e, v, t);
        expect(withinTolerance(dec(e).neg().toFixed(), v, t)).toBe(r);
        expect(withinTolerance(e, dec(v).neg().toFixed(), t)).toBe(r);
      }),
    );
  });

  it('zero variance always passes; both implies either', () => {
    fc.assert(
      fc.property(decimal, decimal, tolerance, (e, v, t) => {
        expect(withinTolerance(e, '0', t)).toBe(true);
        if (withinTolerance(e, v, { ...t, mode: 'both' })) expect(withinTolerance(e, v, { ...t, mode: 'either' })).toBe(true);
      }),
    );
  });

  it('with one bound configured, both and either agree', () => {
    fc.assert(
      fc.property(decimal, decimal, bound, fc.boolean(), (e, v, b, abs) => {
        const t: Tolerance = abs ? { absolute: b, percent: null, mode: 'both' } : { absolute: null, percent: b, mode: 'both' };
        expect(withinTolerance(e, v, t)).toBe(withinTolerance(e, v, { ...t, mode: 'either' }));
      }),
    );
  });

  it('is monotone: a smaller variance never fails where a larger one passes', () => {
    fc.assert(
      fc.property(decimal, decimal, decimal, tolerance, (e, a, b, t) => {
        const [small, large] = dec(a).abs().lte(dec(b).abs()) ? [a, b] : [b, a];
        if (withinTolerance(e, large, t)) expect(withinTolerance(e, small, t)).toBe(true);
      }),
    );
  });

  it('widening a bound never turns a pass into a fail', () => {
    fc.assert(
      fc.property(decimal, decimal, tolerance, fc.integer({ min: 0, max: 1000 }), (e, v, t, extra) => {
        if (!withinTolerance(e, v, t)) return;
        if (t.absolute !== null) expect(withinTolerance(e, v, { ...t, absolute: dec(t.absolute).plus(extra).toFixed() })).toBe(true);
        if (t.percent !== null) expect(withinTolerance(e, v, { ...t, percent: dec(t.percent).plus(extra).toFixed() })).toBe(true);
      }),
    );
  });

  it('validates tolerances given by people', () => {
    expect(toleranceIssue({ absolute: '1.5', percent: null, mode: 'either' })).toBeNull();
    expect(toleranceIssue({ absolute: '-1' })).toMatchObject({ field: 'absolute' });
    expect(toleranceIssue({ percent: 'x' })).toMatchObject({ field: 'percent' });
    expect(toleranceIssue({ mode: 'any' })).toMatchObject({ field: 'mode' });
  });

  it('renders a SQL expression with the bounds as numeric literals', () => {
    expect(toleranceStatusSql('e', 'v', { absolute: '5', percent: '10', mode: 'either' })).toBe(
      `(case when coalesce(((abs(v) <= 5::numeric) or (abs(v) <= abs(e) * 10::numeric / 100)), false) then 'pass' else 'fail' end)`,
    );
    expect(toleranceStatusSql('e', 'v', { absolute: null, percent: null, mode: 'both' })).toContain('(v = 0)');
  });
});
