import { dec } from '@closebook/money';
import fc from 'fast-check';
import { AllowanceGrant, periodAllowance, periodGrant } from './allowance';
import { PriceModel } from './price-models';
import { rateUsage, UsageRatingInput } from './rate-usage';
import { replayUsageLine } from './steps';
import { iso } from './testing/fixtures';

const jan = { start: iso('2024-01-01'), end: iso('2024-02-01') };
const perCall: PriceModel = { model: 'per_unit', unit_amount: '0.005' };

function apiCalls(quantity: string, grants: AllowanceGrant[], extra: Partial<UsageRatingInput> = {}): UsageRatingInput {
  return {
    product_key: 'api_calls',
    product_name: 'API calls',
    unit: 'calls',
    period: jan,
    currency: 'USD',
    keys: [{ key: null, quantity, price: perCall, grants }],
    ...extra,
  };
}
const own = (q: string) => periodGrant({ grant_id: 'g-jan', period: jan, quantity: dec(q) });

describe('rateUsage', () => {
  it('SPEC §10: 25,000 calls with 10,000 included → 10,000 included at 0 and 15,000 × $0.005 = 75.00', () => {
    const r = rateUsage(apiCalls('25000', [own('10000')]));
    expect(r.lines.map((l) => [l.type, l.quantity, l.unit_amount, l.amount])).toEqual([
      ['usage_included', '10000', '0', '0.00'],
      ['usage_overage', '15000', '0.005', '75.00'],
    ]);
    expect(r.lines[1].description).toBe('API calls over 10,000 included: 15,000 × $0.005');
    expect(r.lines[0].description).toBe('API calls included: 10,000 of 10,000 calls');
    expect(r.states[0]).toEqual({
      product_key: 'api_calls',
      price_key: null,
      unit: 'calls',
      included: '10000',
      rolled_over: '0',
      used: '25000',
      remaining: '0',
      percent_used: '250.00',
      overage_quantity: '15000',
      billable_quantity: '15000',
      billable_usage: { amount: '75.00', currency: 'USD' },
      capped: false,
    });
  });

  it('SPEC §10: 8,000 calls → only an included line of 8,000 at 0', () => {
    const r = rateUsage(apiCalls('8000', [own('10000')]));
    expect(r.lines.map((l) => [l.type, l.quantity, l.amount])).toEqual([['usage_included', '8000', '0.00']]);
    expect(r.states[0]).toMatchObject({ remaining: '2000', percent_used: '80.00', overage_quantity: '0', capped: false });
    expect(r.billable_usage).toEqual({ amount: '0.00', currency: 'USD' });
  });

  it('replayUsageLine recomputes every line amount from its steps', () => {
    const r = rateUsage(apiCalls('25000', [own('10000')]));
    for (const line of r.lines) {
      const replay = replayUsageLine(line.steps);
      expect(replay.mismatches).toEqual([]);
      expect(replay.amount).toBe(line.amount);
      expect(replay.amount_exact).toBe(line.amount_exact);
    }
    // the steps are plain JSON: they survive a round trip and still replay
    const stored = JSON.parse(JSON.stringify(r.lines[1].steps));
    expect(replayUsageLine(stored).amount).toBe('75.00');
    expect(stored.map((s: { op: string; name?: string }) => `${s.op}:${s.name}`)).toEqual([
      'input:usage',
      'input:grant_1_available',
      'min:grant_1_drawn',
      'sum:included_used',
      'difference:overage_quantity',
      'overage_mode:billable_quantity',
      'product:amount_exact',
      'round:amount',
    ]);
  });

  it('a tampered step is caught by the replay', () => {
    const r = rateUsage(apiCalls('25000', [own('10000')]));
    const steps = JSON.parse(JSON.stringify(r.lines[1].steps));
    steps[0].inputs.value = '26000';
    steps[0].result = '26000';
    const replay = replayUsageLine(steps);
    expect(replay.ok).toBe(false);
    expect(replay.mismatches.some((m) => m.reason.includes('differs from step usage'))).toBe(true);
  });

  it('rollover grants are drawn first and shown', () => {
    const ro: AllowanceGrant = {
      grant_id: 'g-dec:rollover',
      kind: 'rollover',
      quantity: '2000',
      granted_in_period: jan.start,
      expires_after_period: jan.start,
      carried_from_period: iso('2023-12-01'),
    };
    const r = rateUsage(apiCalls('13000', [own('10000'), ro]));
    expect(r.keys[0].drawdown.draws.map((x) => [x.grant_id, x.drawn])).toEqual([
      ['g-dec:rollover', '2000'],
      ['g-jan', '10000'],
    ]);
    expect(r.lines[1].description).toBe('API calls over 12,000 included (2,000 rolled over): 1,000 × $0.005');
    expect(r.states[0]).toMatchObject({ included: '10000', rolled_over: '2000', used: '13000', remaining: '0', overage_quantity: '1000' });
  });

  it('graduated, volume and package overage lines carry a tier breakdown / packages', () => {
    const graduated: PriceModel = {
      model: 'graduated',
      tiers: [
        { up_to: '10000', unit_amount: '0.01' },
        { up_to: null, unit_amount: '0.005' },
      ],
    };
    const g = rateUsage({ ...apiCalls('0', []), keys: [{ key: null, quantity: '25000', price: graduated, grants: [own('10000')] }] });
    // 15,000 billable: 10,000 × 0.01 + 5,000 × 0.005 = 125
    expect(g.lines[1].amount).toBe('125.00');
    expect(g.lines[1].tiers?.map((t) => [t.tier, t.quantity, t.amount])).toEqual([
      [1, '10000', '100'],
      [2, '5000', '25'],
    ]);
    expect(g.lines[1].description).toBe('API calls over 10,000 included: 15,000 calls, graduated (10,000 × $0.01 + 5,000 × $0.005)');
    const v = rateUsage({ ...apiCalls('0', []), keys: [{ key: null, quantity: '25000', price: { ...graduated, model: 'volume' }, grants: [own('10000')] }] });
    expect(v.lines[1].amount).toBe('75.00'); // 15,000 reaches tier 2: 15,000 × 0.005
    expect(v.lines[1].description).toBe('API calls over 10,000 included: 15,000 × $0.005 (volume tier 2)');
    const p = rateUsage({
      ...apiCalls('0', []),
      keys: [{ key: null, quantity: '25001', price: { model: 'package', package_size: '1000', package_amount: '0.10' }, grants: [own('10000')] }],
    });
    expect(p.lines[1].amount).toBe('1.60'); // 15,001 → 16 started packages × 0.10
    expect(p.lines[1].description).toBe('API calls over 10,000 included: 15,001 calls = 16 packages of 1,000 × $0.10');
    for (const r of [g, v, p]) for (const l of r.lines) expect(replayUsageLine(l.steps).amount).toBe(l.amount);
  });

  it('keyed prices: prod and preview, each with its own allowance and rate', () => {
    const r = rateUsage({
      product_key: 'bandwidth',
      product_name: 'Bandwidth',
      unit: 'GB',
      price_key_label: 'environment',
      period: jan,
      currency: 'USD',
      keys: [
        { key: 'prod', quantity: '150', price: { model: 'per_unit', unit_amount: '0.10' }, grants: [periodGrant({ grant_id: 'p', period: jan, quantity: dec(100) })] },
        { key: 'preview', quantity: '400', price: { model: 'per_unit', unit_amount: '0.02' }, grants: [periodGrant({ grant_id: 'v', period: jan, quantity: dec(500) })] },
      ],
    });
    expect(r.lines.map((l) => [l.line_key, l.quantity, l.amount, l.description])).toEqual([
      ['usage_included:bandwidth:preview', '400', '0.00', 'Bandwidth (environment: preview) included: 400 of 500 GB'],
      ['usage_included:bandwidth:prod', '100', '0.00', 'Bandwidth (environment: prod) included: 100 of 100 GB'],
      ['usage_overage:bandwidth:prod', '50', '5.00', 'Bandwidth (environment: prod) over 100 included: 50 × $0.10'],
    ]);
    expect(r.states.map((s) => [s.price_key, s.remaining, s.overage_quantity])).toEqual([
      ['preview', '100', '0'],
      ['prod', '0', '50'],
    ]);
  });

  it('block (capped free tier): overage recorded, billable 0, capped', () => {
    const r = rateUsage({ ...apiCalls('1500', [own('1000')]), overage: 'block' });
    expect(r.lines.map((l) => [l.type, l.quantity, l.amount])).toEqual([
      ['usage_included', '1000', '0.00'],
      ['usage_overage', '0', '0.00'],
    ]);
    expect(r.lines[1].meta).toMatchObject({ capped: true, unbilled_quantity: '500' });
    expect(r.lines[1].description).toBe('API calls over 1,000 included: 500 calls not billed (capped)');
    expect(r.states[0]).toMatchObject({ overage_quantity: '500', billable_quantity: '0', billable_usage: { amount: '0.00' }, capped: true });
  });

  it('allowance steps are carried in front and chained to the period grant', () => {
    const pa = periodAllowance({
      cycle: jan,
      segments: [
        { from: jan.start, allowance: '10000' },
        { from: iso('2024-01-21'), allowance: '20000', transition: 'upgrade' },
      ],
    });
    const r = rateUsage({
      ...apiCalls('0', []),
      keys: [{ key: null, quantity: '20000', price: perCall, grants: [periodGrant({ grant_id: 'g', period: jan, quantity: pa.included })], allowance_steps: pa.steps, period_grant_id: 'g' }],
    });
    const over = r.lines.find((l) => l.type === 'usage_overage');
    // (10,000 × 20 + 20,000 × 11) / 31 = 13,548.387096774194 included → 6,451.612903225806 × 0.005 = 32.258… → 32.26
    expect(over?.amount).toBe('32.26');
    const grantStep = over?.steps.find((s) => s.name === 'grant_1_available');
    expect(grantStep?.refs).toEqual({ value: 'period_allowance' });
    expect(replayUsageLine(over!.steps).ok).toBe(true);
  });

  it('property: rating never produces a negative usage line and lines replay', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100000 }),
        fc.integer({ min: 0, max: 50000 }),
        fc.constantFrom<'bill' | 'block'>('bill', 'block'),
        fc.integer({ min: 0, max: 5000 }),
        (usage, allowance, mode, unit) => {
          const r = rateUsage({
            ...apiCalls(String(usage), allowance ? [own(String(allowance))] : []),
            overage: mode,
            keys: [{ key: null, quantity: String(usage), price: { model: 'per_unit', unit_amount: dec(unit).div(10000).toFixed() }, grants: allowance ? [own(String(allowance))] : [] }],
          });
          for (const l of r.lines) {
            expect(dec(l.amount).gte(0)).toBe(true);
            expect(dec(l.quantity).gte(0)).toBe(true);
            expect(replayUsageLine(l.steps).amount).toBe(l.amount);
          }
          const s = r.states[0];
          expect(dec(s.used).eq(dec(s.included).plus(dec(s.rolled_over)).minus(dec(s.remaining)).plus(dec(s.overage_quantity)))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });
});
