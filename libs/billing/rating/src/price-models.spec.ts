import { dec } from '@closebook/money';
import fc from 'fast-check';
import { RatingError } from './errors';
import { describePrice, PriceModel, priceQuantity, validatePriceModel } from './price-models';
import { replaySteps } from './steps';

const codes = (p: unknown, opts = {}) => validatePriceModel(p, opts).map((i) => `${i.code}@${i.field}`);
const amount = (m: PriceModel, q: string) => priceQuantity(m, dec(q), 'USD').amount.toFixed();

const graduated: PriceModel = {
  model: 'graduated',
  tiers: [
    { up_to: '10000', unit_amount: '0.01' },
    { up_to: '50000', unit_amount: '0.005' },
    { up_to: null, unit_amount: '0.001' },
  ],
};
const volume: PriceModel = { model: 'volume', tiers: graduated.tiers };

describe('validatePriceModel', () => {
  it('accepts every model', () => {
    expect(codes({ model: 'flat', amount: '49' })).toEqual([]);
    expect(codes({ model: 'per_unit', unit_amount: '0.000000000001' })).toEqual([]);
    expect(codes({ model: 'package', package_size: '1000', package_amount: '0.10' })).toEqual([]);
    expect(codes(graduated)).toEqual([]);
    expect(codes({ model: 'volume', tiers: [{ up_to: null, unit_amount: '1', flat_amount: '5' }] })).toEqual([]);
  });

  it('reports tiers out of order, open tiers before the last, a closed last tier', () => {
    expect(
      codes({
        model: 'graduated',
        tiers: [
          { up_to: '100', unit_amount: '1' },
          { up_to: '100', unit_amount: '1' },
          { up_to: null, unit_amount: '1' },
          { up_to: '500', unit_amount: '1' },
        ],
      }),
    ).toEqual(['tier_not_ascending@tiers[1].up_to', 'open_tier_not_last@tiers[2].up_to', 'last_tier_not_open@tiers[3].up_to']);
    expect(codes({ model: 'volume', tiers: [] })).toEqual(['tiers_empty@tiers']);
    expect(codes({ model: 'volume', tiers: [{ up_to: '0', unit_amount: '1' }, { up_to: null, unit_amount: '1' }] })).toEqual([
      'not_positive@tiers[0].up_to',
    ]);
  });

  it('reports negative amounts, too many decimals, bad decimals, package_size 0, unknown fields', () => {
    expect(codes({ model: 'per_unit', unit_amount: '-1' })).toEqual(['negative_not_allowed@unit_amount']);
    expect(codes({ model: 'per_unit', unit_amount: '0.0000000000001' })).toEqual(['too_many_decimals@unit_amount']);
    expect(codes({ model: 'per_unit', unit_amount: 0.5 })).toEqual(['invalid_decimal@unit_amount']);
    expect(codes({ model: 'per_unit', unit_amount: '1e-3' })).toEqual(['invalid_decimal@unit_amount']);
    expect(codes({ model: 'package', package_size: '0', package_amount: '1' })).toEqual(['not_positive@package_size']);
    expect(codes({ model: 'flat', amount: '1', tiers: [] })).toEqual(['unknown_field@tiers']);
    expect(codes({ model: 'stairs' })).toEqual(['unknown_model@model']);
    expect(codes({ model: 'per_unit' })).toEqual(['required@unit_amount']);
    expect(codes({ model: 'graduated', tiers: [{ up_to: null, unit_amount: '1', flat_amount: '-2' }] })).toEqual([
      'negative_not_allowed@tiers[0].flat_amount',
    ]);
    expect(codes(null)).toEqual(['invalid_price_model@']);
  });

  it('prefixes fields and bounds a flat fee by the currency minor unit', () => {
    expect(codes({ model: 'flat', amount: '49.001' }, { field: 'products[0].price', currency: 'USD' })).toEqual([
      'too_many_decimals@products[0].price.amount',
    ]);
    expect(codes({ model: 'flat', amount: '49.5' }, { currency: 'JPY' })).toEqual(['too_many_decimals@amount']);
  });

  it('priceQuantity refuses an invalid model with a RatingError carrying all issues', () => {
    try {
      priceQuantity({ model: 'package', package_size: '0', package_amount: '-1' }, dec(1), 'USD');
      throw new Error('expected a throw');
    } catch (e) {
      expect(e).toBeInstanceOf(RatingError);
      expect((e as RatingError).issues.map((i) => i.field)).toEqual(['price.package_size', 'price.package_amount']);
    }
  });
});

describe('priceQuantity', () => {
  it('flat, per_unit, package (per started package)', () => {
    expect(amount({ model: 'flat', amount: '49' }, '0')).toBe('0');
    expect(amount({ model: 'flat', amount: '49' }, '3')).toBe('49');
    expect(amount({ model: 'per_unit', unit_amount: '0.005' }, '15000')).toBe('75');
    const pkg: PriceModel = { model: 'package', package_size: '1000', package_amount: '0.10' };
    expect(amount(pkg, '0')).toBe('0');
    expect(amount(pkg, '1')).toBe('0.1');
    expect(amount(pkg, '1000')).toBe('0.1');
    expect(amount(pkg, '1001')).toBe('0.2');
    expect(amount(pkg, '15000')).toBe('1.5');
    expect(priceQuantity(pkg, dec(15001), 'USD').packages?.toFixed()).toBe('16');
  });

  it('graduated vs volume vs package on the same quantity (25,000)', () => {
    // graduated: 10,000 × 0.01 + 15,000 × 0.005 = 100 + 75 = 175
    const g = priceQuantity(graduated, dec(25000), 'USD');
    expect(g.amount.toFixed()).toBe('175');
    expect(g.tiers).toEqual([
      { tier: 1, from: '0', to: '10000', quantity: '10000', unit_amount: '0.01', flat_amount: '0', amount: '100' },
      { tier: 2, from: '10000', to: '50000', quantity: '15000', unit_amount: '0.005', flat_amount: '0', amount: '75' },
    ]);
    // volume: 25,000 reaches tier 2 which prices all: 25,000 × 0.005 = 125
    const v = priceQuantity(volume, dec(25000), 'USD');
    expect(v.amount.toFixed()).toBe('125');
    expect(v.tiers?.map((t) => t.tier)).toEqual([2]);
    // package: 25 packages of 1,000 × $4 = 100
    expect(amount({ model: 'package', package_size: '1000', package_amount: '4' }, '25000')).toBe('100');
  });

  it('tier bounds are inclusive upper bounds; flat amounts charge once per tier entered', () => {
    expect(amount(volume, '10000')).toBe('100'); // still tier 1
    expect(amount(volume, '10001')).toBe('50.005'); // tier 2 for all
    expect(amount(volume, '60000')).toBe('60'); // tier 3
    expect(amount(graduated, '60000')).toBe('310'); // 100 + 200 + 10
    const withFlat: PriceModel = {
      model: 'graduated',
      tiers: [
        { up_to: '5', unit_amount: '0', flat_amount: '20' },
        { up_to: null, unit_amount: '3', flat_amount: '1' },
      ],
    };
    expect(amount(withFlat, '0')).toBe('0');
    expect(amount(withFlat, '2')).toBe('20');
    expect(amount(withFlat, '7')).toBe('27'); // 20 + (2 × 3 + 1)
    expect(amount({ model: 'volume', tiers: [{ up_to: '5', unit_amount: '1', flat_amount: '10' }, { up_to: null, unit_amount: '0.5' }] }, '4')).toBe('14');
  });

  it('fractional quantities and 12-decimal unit prices stay exact', () => {
    expect(amount({ model: 'per_unit', unit_amount: '0.000000000001' }, '123456789.5')).toBe('0.0001234567895');
    expect(amount(graduated, '10000.5')).toBe('100.0025');
  });

  it('steps replay to the amount', () => {
    for (const [m, q] of [[graduated, '60000'], [volume, '12345.6'], [{ model: 'package', package_size: '1000', package_amount: '0.1' }, '2500']] as const) {
      const r = priceQuantity(m as PriceModel, dec(q), 'USD');
      const replay = replaySteps(r.steps);
      expect(replay.ok).toBe(true);
      expect(replay.values.amount_exact).toBe(r.amount.toFixed());
    }
  });

  it('describes prices', () => {
    expect(describePrice({ model: 'per_unit', unit_amount: '0.005' }, 'USD', 'call')).toBe('$0.005 per call');
    expect(describePrice({ model: 'package', package_size: '1000', package_amount: '0.1' }, 'USD', 'calls')).toBe('$0.10 per 1,000 calls');
    expect(describePrice(volume, 'EUR')).toBe('volume: up to 10,000 €0.01, up to 50,000 €0.005, above 50,000 €0.001');
  });

  it('property: graduated is monotone in the quantity and volume ≤ graduated when unit prices fall with tiers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200000 }), fc.integer({ min: 0, max: 200000 }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(priceQuantity(graduated, dec(lo), 'USD').amount.lte(priceQuantity(graduated, dec(hi), 'USD').amount)).toBe(true);
        expect(priceQuantity(volume, dec(hi), 'USD').amount.lte(priceQuantity(graduated, dec(hi), 'USD').amount)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
