import { dec } from '@closebook/money';
import fc from 'fast-check';
import { AllowanceGrant, applyOverageMode, cycleAllowance, drawDown, drawOrder, liveGrants, periodAllowance } from './allowance';
import { RatingError } from './errors';
import { replaySteps } from './steps';

const d = (s: string) => `${s}T00:00:00.000Z`;
const april = { start: d('2024-04-01'), end: d('2024-05-01') }; // 30 days

describe('cycleAllowance', () => {
  it('allowance × seats (per_seat) × multiplier', () => {
    expect(cycleAllowance({ allowance: '10000' }).toFixed()).toBe('10000');
    expect(cycleAllowance({ allowance: '5', allowance_basis: 'per_seat' }, 10).toFixed()).toBe('50');
    expect(cycleAllowance({ allowance: '5', allowance_basis: 'fixed' }, 10).toFixed()).toBe('5');
    expect(cycleAllowance({ allowance: '10000', allowance_multiplier: '1.2' }).toFixed()).toBe('12000');
  });
});

describe('periodAllowance (prorata)', () => {
  it('one segment for the whole cycle is exactly one allowance', () => {
    const pa = periodAllowance({ cycle: april, segments: [{ from: d('2024-01-01'), allowance: '10000' }] });
    expect(pa.included.toFixed()).toBe('10000');
    expect(replaySteps(pa.steps).values.period_allowance).toBe('10000');
  });

  it('upgrade on day 21 of 30: 10,000 × 20/30 + 20,000 × 10/30 = 13,333.333333333334 (rounded up at 12 dp)', () => {
    const pa = periodAllowance({
      cycle: april,
      segments: [
        { from: d('2024-03-01'), allowance: '10000' },
        { from: '2024-04-21T15:00:00Z', allowance: '20000', transition: 'upgrade' },
      ],
    });
    // (10,000 × 20 + 20,000 × 10) / 30 = 400,000 / 30 = 13,333.33…
    expect(pa.prorata.toFixed(6)).toBe('13333.333333');
    expect(pa.included.toFixed()).toBe('13333.333333333334');
    expect(pa.segments.map((s) => s.days)).toEqual([20, 10]);
    const r = replaySteps(pa.steps);
    expect(r.ok).toBe(true);
    expect(r.values.period_allowance).toBe('13333.333333333334');
  });

  it('equal allowances in several segments add back to exactly one allowance', () => {
    const pa = periodAllowance({
      cycle: april,
      segments: [
        { from: d('2024-04-01'), allowance: '1000' },
        { from: d('2024-04-08'), allowance: '1000' },
        { from: d('2024-04-19'), allowance: '1000' },
      ],
    });
    expect(pa.included.toFixed()).toBe('1000');
  });

  it('per-seat allowances prorate with seat changes', () => {
    // 5 GB/seat: 10 seats for 15 days, 20 seats for 15 days → (50 × 15 + 100 × 15) / 30 = 75
    const pa = periodAllowance({
      cycle: april,
      segments: [
        { from: d('2024-04-01'), allowance: '5', allowance_basis: 'per_seat', seats: 10 },
        { from: d('2024-04-16'), allowance: '5', allowance_basis: 'per_seat', seats: 20 },
      ],
    });
    expect(pa.included.toFixed()).toBe('75');
  });

  it('an upgrade to a plan with less of this dimension keeps the old allowance as a floor; a downgrade does not', () => {
    const segs = (transition: 'upgrade' | 'downgrade') => [
      { from: d('2024-04-01'), allowance: '10000' },
      { from: d('2024-04-11'), allowance: '4000', transition },
    ];
    const up = periodAllowance({ cycle: april, segments: segs('upgrade') });
    expect(up.included.toFixed()).toBe('10000');
    expect(up.floor_applied?.toFixed()).toBe('10000');
    // downgrade: (10,000 × 10 + 4,000 × 20) / 30 = 6,000
    expect(periodAllowance({ cycle: april, segments: segs('downgrade') }).included.toFixed()).toBe('6000');
  });

  it('a partial first period prorates against the full cycle', () => {
    const pa = periodAllowance({ cycle: april, period: { start: d('2024-04-21'), end: april.end }, segments: [{ from: d('2024-04-21'), allowance: '3000' }] });
    expect(pa.included.toFixed()).toBe('1000'); // 3,000 × 10/30
  });

  it('refuses gaps and unsorted segments', () => {
    expect(() => periodAllowance({ cycle: april, segments: [{ from: d('2024-04-02'), allowance: '1' }] })).toThrow(RatingError);
    expect(() =>
      periodAllowance({ cycle: april, segments: [{ from: d('2024-04-01'), allowance: '1' }, { from: d('2024-03-01'), allowance: '1' }] }),
    ).toThrow(RatingError);
  });

  it('property: an upgrade never lowers the period allowance', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 0, max: 29 }),
        (oldA, newA, day) => {
          const pa = periodAllowance({
            cycle: april,
            segments: [
              { from: d('2024-04-01'), allowance: String(oldA) },
              { from: new Date(Date.UTC(2024, 3, 1 + day)).toISOString(), allowance: String(newA), transition: 'upgrade' },
            ],
          });
          expect(pa.included.gte(oldA)).toBe(true);
          expect(replaySteps(pa.steps).ok).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});

const grant = (id: string, kind: 'period' | 'rollover', q: string, from: string, until: string, before?: string): AllowanceGrant => ({
  grant_id: id,
  kind,
  quantity: q,
  granted_in_period: d(from),
  expires_after_period: d(until),
  ...(before ? { drawn_before: before } : {}),
});

describe('drawDown', () => {
  const grants = [
    grant('period-apr', 'period', '10000', '2024-04-01', '2024-04-01'),
    grant('ro-mar', 'rollover', '2000', '2024-04-01', '2024-04-01'),
    grant('ro-feb', 'rollover', '1500', '2024-03-01', '2024-04-01', '500'),
  ];

  it('draws rollover grants first, oldest first, then the period allowance', () => {
    expect(drawOrder(grants).map((g) => g.grant_id)).toEqual(['ro-feb', 'ro-mar', 'period-apr']);
    const dd = drawDown(grants, '4000');
    expect(dd.draws.map((x) => [x.grant_id, x.available, x.drawn, x.remaining])).toEqual([
      ['ro-feb', '1000', '1000', '0'],
      ['ro-mar', '2000', '2000', '0'],
      ['period-apr', '10000', '1000', '9000'],
    ]);
    expect(dd.included_used.toFixed()).toBe('4000');
    expect(dd.overage_quantity.toFixed()).toBe('0');
    expect(replaySteps(dd.steps).ok).toBe(true);
  });

  it('usage above everything is overage', () => {
    const dd = drawDown(grants, '20000');
    expect(dd.available.toFixed()).toBe('13000');
    expect(dd.included_used.toFixed()).toBe('13000');
    expect(dd.overage_quantity.toFixed()).toBe('7000');
  });

  it('no grants: all usage is overage', () => {
    const dd = drawDown([], '12.5');
    expect(dd.included_used.toFixed()).toBe('0');
    expect(dd.overage_quantity.toFixed()).toBe('12.5');
  });

  it('liveGrants keeps grants drawable in the period', () => {
    expect(liveGrants(grants, d('2024-04-01')).length).toBe(3);
    expect(liveGrants(grants, d('2024-03-01')).map((g) => g.grant_id)).toEqual(['ro-feb']);
    expect(liveGrants(grants, d('2024-05-01'))).toEqual([]);
  });

  it('refuses duplicate ids and over-drawn grants', () => {
    expect(() => drawDown([grants[0], grants[0]], '1')).toThrow(RatingError);
    expect(() => drawDown([grant('x', 'rollover', '1', '2024-04-01', '2024-04-01', '2')], '1')).toThrow(RatingError);
  });

  it('block mode: overage recorded, billable 0, capped once the allowance is reached', () => {
    expect(applyOverageMode(dec(120), dec(100), dec(20), 'block')).toEqual({ billable: dec(0), capped: true });
    expect(applyOverageMode(dec(80), dec(100), dec(0), 'block').capped).toBe(false);
    expect(applyOverageMode(dec(120), dec(100), dec(20), 'bill').billable.toFixed()).toBe('20');
  });

  it('property: never draws more than granted, and included + overage = usage', () => {
    const g = fc.record({
      kind: fc.constantFrom<'period' | 'rollover'>('period', 'rollover'),
      q: fc.integer({ min: 0, max: 100000 }),
      before: fc.integer({ min: 0, max: 100 }),
      month: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(fc.array(g, { maxLength: 5 }), fc.integer({ min: 0, max: 400000 }), fc.integer({ min: 0, max: 99 }), (gs, usage, frac) => {
        const list = gs.map((x, i) =>
          grant(`g${i}`, x.kind, String(x.q + x.before), `2024-0${x.month}-01`, '2024-04-01', x.before ? String(x.before) : undefined),
        );
        const u = dec(usage).plus(dec(frac).div(100));
        const dd = drawDown(list, u);
        expect(dd.included_used.plus(dd.overage_quantity).eq(u)).toBe(true);
        expect(dd.overage_quantity.gte(0)).toBe(true);
        for (const x of dd.draws) {
          expect(dec(x.drawn).lte(dec(x.available))).toBe(true);
          expect(dec(x.drawn).gte(0)).toBe(true);
        }
        // overage only when every grant is exhausted
        if (dd.overage_quantity.gt(0)) expect(dd.draws.every((x) => dec(x.remaining).isZero())).toBe(true);
        expect(replaySteps(dd.steps).ok).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
