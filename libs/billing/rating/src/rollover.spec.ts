import { dec } from '@closebook/money';
import fc from 'fast-check';
import { AllowanceGrant, drawDown, liveGrants, periodGrant } from './allowance';
import { BillingPeriod, nextPeriod } from './billing-periods';
import { rollover, RolloverConfig } from './rollover';
import { replaySteps } from './steps';

const jan: BillingPeriod = { start: '2024-01-01T00:00:00.000Z', end: '2024-02-01T00:00:00.000Z' };

/** Runs one period: its own 1,000 allowance grant + carried grants, draws `usage`, rolls over. */
function runPeriod(p: BillingPeriod, carried: AllowanceGrant[], usage: string, config: RolloverConfig, allowance = '1000') {
  const own = periodGrant({ grant_id: `api:${p.start.slice(0, 7)}`, period: p, quantity: dec(allowance), product_key: 'api' });
  const grants = [own, ...liveGrants(carried, p.start)];
  const dd = drawDown(grants, usage);
  const ro = rollover({ period: p, anchor_day: 1, grants, drawdown: dd, config, one_allowance: allowance });
  return { dd, ro };
}

describe('rollover', () => {
  it('three-period chain: carry, cap, expiry', () => {
    const config: RolloverConfig = { enabled: true, cap: '500' };
    // Jan: allowance 1,000, usage 300 → unused 700, capped at 500 → 500 carried into Feb (expires after Feb).
    const p1 = runPeriod(jan, [], '300', config);
    expect(p1.ro.carried.toFixed()).toBe('500');
    expect(p1.ro.grant).toMatchObject({
      grant_id: 'api:2024-01:rollover',
      kind: 'rollover',
      quantity: '500',
      granted_in_period: '2024-02-01T00:00:00.000Z',
      expires_after_period: '2024-02-01T00:00:00.000Z',
      carried_from_period: '2024-01-01T00:00:00.000Z',
      product_key: 'api',
    });
    expect(p1.ro.expiries).toEqual([
      { grant_id: 'api:2024-01', kind: 'period', period: jan.start, unused: '700', carried: '500', expired: '200', carried_to: 'api:2024-01:rollover' },
    ]);

    // Feb: usage 1,200 draws the 500 rollover first, then 700 of Feb's 1,000 → 300 unused → 300 carried.
    const feb = nextPeriod(jan, 1);
    const p2 = runPeriod(feb, p1.ro.continuing, '1200', config);
    expect(p2.dd.draws.map((x) => [x.grant_id, x.drawn])).toEqual([
      ['api:2024-01:rollover', '500'],
      ['api:2024-02', '700'],
    ]);
    expect(p2.ro.carried.toFixed()).toBe('300');
    // the Jan rollover grant lapses at Feb's end (fully used: nothing expires)
    expect(p2.ro.expiries.find((e) => e.grant_id === 'api:2024-01:rollover')).toMatchObject({ unused: '0', expired: '0' });

    // Mar: usage 0 → the 300 carried from Feb is unused and expires; Mar's own 1,000 carries 500 (cap).
    const mar = nextPeriod(feb, 1);
    const p3 = runPeriod(mar, p2.ro.continuing, '0', config);
    expect(p3.ro.expiries).toEqual([
      { grant_id: 'api:2024-02:rollover', kind: 'rollover', period: mar.start, unused: '300', carried: '0', expired: '300', carried_to: null },
      { grant_id: 'api:2024-03', kind: 'period', period: mar.start, unused: '1000', carried: '500', expired: '500', carried_to: 'api:2024-03:rollover' },
    ]);
    expect(p3.ro.continuing.map((g) => g.grant_id)).toEqual(['api:2024-03:rollover']);
    expect(replaySteps(p3.ro.steps).ok).toBe(true);
  });

  it('cap defaults to one allowance; disabled rollover still records expiries', () => {
    const r = runPeriod(jan, [], '0', { enabled: true });
    expect(r.ro.cap.toFixed()).toBe('1000');
    expect(r.ro.carried.toFixed()).toBe('1000');
    const off = runPeriod(jan, [], '100', { enabled: false });
    expect(off.ro.carried.toFixed()).toBe('0');
    expect(off.ro.grant).toBeNull();
    expect(off.ro.expiries[0]).toMatchObject({ unused: '900', expired: '900', carried: '0' });
  });

  it('rollover_expiry_periods 2: carried units live two cycles, drawn_before tracks the first', () => {
    const config: RolloverConfig = { enabled: true, expiry_periods: 2 };
    const p1 = runPeriod(jan, [], '0', config);
    expect(p1.ro.grant?.expires_after_period).toBe('2024-03-01T00:00:00.000Z');
    const feb = nextPeriod(jan, 1);
    // Feb: usage 1,400 → 1,000 from the rollover, 400 from Feb's own → Feb carries 600
    const p2 = runPeriod(feb, p1.ro.continuing, '1400', config);
    const janGrant = p2.ro.continuing.find((g) => g.grant_id === 'api:2024-01:rollover');
    expect(janGrant?.drawn_before).toBe('1000');
    expect(p2.ro.carried.toFixed()).toBe('600');
  });

  it('property: 0 ≤ carried ≤ cap and carried ≤ the unused own allowance', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 0, max: 8000 }),
        fc.option(fc.integer({ min: 0, max: 3000 })),
        fc.integer({ min: 0, max: 2000 }),
        (allowance, usage, cap, carriedIn) => {
          const carried: AllowanceGrant[] = carriedIn
            ? [{ grant_id: 'old', kind: 'rollover', quantity: String(carriedIn), granted_in_period: jan.start, expires_after_period: jan.start }]
            : [];
          const r = runPeriod(jan, carried, String(usage), { enabled: true, cap: cap === null ? null : String(cap) }, String(allowance));
          expect(r.ro.carried.gte(0)).toBe(true);
          expect(r.ro.carried.lte(r.ro.cap)).toBe(true);
          expect(r.ro.carried.lte(r.ro.own_unused)).toBe(true);
          // every expiring grant is fully accounted: unused = carried + expired
          for (const e of r.ro.expiries) expect(dec(e.unused).eq(dec(e.carried).plus(dec(e.expired)))).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });
});
