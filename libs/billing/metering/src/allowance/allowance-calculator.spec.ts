import type { RatingPlanVersion } from '@closebook/rating';
import { periodAllowanceStates, thresholdsReached, type DimensionUsage } from './allowance-calculator';
import { digestOf, eventDigest } from '../rollups/digest';

const STARTER: RatingPlanVersion = {
  plan_key: 'starter',
  version: 1,
  name: 'Starter',
  currency: 'USD',
  interval: 'month',
  products: [
    { kind: 'recurring', product_key: 'fee', name: 'Starter', price: { model: 'flat', amount: '49' } },
    { kind: 'metered', product_key: 'api_calls', name: 'API calls', unit: 'calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    {
      kind: 'metered',
      product_key: 'bw',
      name: 'Bandwidth',
      unit: 'GB',
      price_key_label: 'environment',
      keyed_prices: [
        { key: 'prod', price: { model: 'per_unit', unit_amount: '0.10' }, allowance: '100' },
        { key: '*', price: { model: 'per_unit', unit_amount: '0.05' } },
      ],
    },
  ],
};
const period = { start: '2026-11-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' };
const states = (usage: DimensionUsage[], segments = [{ from: period.start, plan: STARTER, seats: 1 }]) =>
  periodAllowanceStates({ subscription_id: 's', subscription_start: '2026-10-01T00:00:00.000Z', anchor_day: 1, period, segments, usage });

describe('allowanceStates', () => {
  it('SPEC §10: 25,000 calls on 10,000 included at $0.005 → 15,000 over, 75.00', () => {
    const s = states([{ product_key: 'api_calls', price_key: '', quantity: '25000' }]);
    expect(s.dimensions[0]).toMatchObject({ product_key: 'api_calls', price_key: null, included: '10000', used: '25000', overage_quantity: '15000', billable_usage: { amount: '75.00', currency: 'USD' } });
    expect(s.overage_so_far).toEqual({ amount: '75.00', currency: 'USD' });
  });

  it('lists every declared key, prices others by "*", and reports usage without a key apart', () => {
    const s = states([
      { product_key: 'bw', price_key: 'dev', quantity: '10' },
      { product_key: 'bw', price_key: '', quantity: '3' },
      { product_key: 'gone', price_key: '', quantity: '4' },
      { product_key: 'api_calls', price_key: '', quantity: '0' },
    ]);
    expect(s.dimensions.filter((d) => d.product_key === 'bw').map((d) => [d.price_key, d.used, d.billable_usage.amount])).toEqual([
      ['dev', '10', '0.50'],
      ['prod', '0', '0.00'],
    ]);
    expect(s.unpriced).toEqual([
      { product_key: 'bw', price_key: '', quantity: '3', code: 'price_key_required', reason: expect.any(String) },
      { product_key: 'gone', price_key: '', quantity: '4', code: 'unpriced_usage', reason: expect.stringContaining('no plan') },
    ]);
  });

  it('prorates over a mid-period upgrade and prices at the plan in force at the end', () => {
    const PRO: RatingPlanVersion = {
      ...STARTER,
      plan_key: 'pro',
      products: [
        { kind: 'recurring', product_key: 'fee', name: 'Pro', price: { model: 'flat', amount: '99' } },
        { kind: 'metered', product_key: 'api_calls', name: 'API calls', unit: 'calls', allowance: '40000', price: { model: 'per_unit', unit_amount: '0.004' } },
      ],
    };
    // 10,000 for Nov 1–15 and 40,000 for Nov 16–30: (10,000 × 15 + 40,000 × 15) / 30 = 25,000 included.
    const s = states([{ product_key: 'api_calls', price_key: '', quantity: '30000' }], [
      { from: period.start, plan: STARTER, seats: 1 },
      { from: '2026-11-16T00:00:00.000Z', plan: PRO, seats: 1 },
    ] as never);
    expect(s.dimensions.find((d) => d.product_key === 'api_calls')).toMatchObject({ included: '25000', overage_quantity: '5000', billable_usage: { amount: '20.00' } });
    // bw left the plan: still a dimension, priced by the last plan that had it; an upgrade never
    // lowers an allowance (rating rule 12), so its 100 included stays whole.
    expect(s.dimensions.filter((d) => d.product_key === 'bw').map((d) => [d.price_key, d.included])).toEqual([['prod', '100']]);
  });
});

describe('thresholdsReached', () => {
  it('compares exactly: 79.995% is below 80%', () => {
    expect(thresholdsReached({ included: '200000', rolled_over: '0', used: '159990' })).toEqual([]);
    expect(thresholdsReached({ included: '100', rolled_over: '0', used: '80' })).toEqual([80]);
    expect(thresholdsReached({ included: '90', rolled_over: '10', used: '100' })).toEqual([80, 100]);
    expect(thresholdsReached({ included: '0', rolled_over: '0', used: '5' })).toEqual([]);
  });
});

describe('digest', () => {
  it('is order-independent and cancels a pair (XOR)', () => {
    expect(digestOf(['a', 'b', 'c'])).toBe(digestOf(['c', 'a', 'b']));
    expect(digestOf(['a', 'b', 'b'])).toBe(digestOf(['a']));
    expect(digestOf(['abc'])).toBe('-8070080442485551184');
    expect(eventDigest('abc')).toBe(-8070080442485551184n);
  });
});
