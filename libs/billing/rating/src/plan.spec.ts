import { validatePlanVersion } from './plan';
import { FREE, HOSTING, PRO, RETAINER, STARTER, STARTER_YEARLY, TEAM } from './testing/fixtures';

const codes = (p: unknown) => validatePlanVersion(p).map((i) => `${i.code}@${i.field}`);

describe('validatePlanVersion', () => {
  it('accepts the fixture plans', () => {
    for (const p of [STARTER, PRO, TEAM, RETAINER, FREE, HOSTING, STARTER_YEARLY]) expect(codes(p)).toEqual([]);
  });

  it('reports field paths into products, prices and keyed prices', () => {
    const bad = {
      ...HOSTING,
      currency: 'usd',
      interval: 'week',
      products: [
        { kind: 'recurring', product_key: 'fee', name: 'Fee', price: { model: 'per_unit', unit_amount: '1' } },
        { kind: 'recurring', product_key: 'fee', name: 'Fee 2', price: { model: 'flat', amount: '9.999' } },
        {
          kind: 'metered',
          product_key: 'bw',
          name: 'Bandwidth',
          unit: 'GB',
          allowance: '5',
          price_key_label: 'environment',
          keyed_prices: [
            { key: 'prod', price: { model: 'per_unit', unit_amount: '-1' } },
            { key: 'prod', price: { model: 'per_unit', unit_amount: '1' } },
          ],
        },
        { kind: 'gadget', product_key: 'x', name: 'X' },
      ],
    };
    expect(codes(bad)).toEqual([
      'unknown_currency@currency',
      'invalid_interval@interval',
      'flat_price_required@products[0].price.model',
      'duplicate_product@products[1].product_key',
      'allowance_conflict@products[2].allowance',
      'negative_not_allowed@products[2].keyed_prices[0].price.unit_amount',
      'duplicate_price_key@products[2].keyed_prices[1].key',
      'invalid_product_kind@products[3].kind',
    ]);
  });

  it('bounds a flat fee by the plan currency', () => {
    const p = { ...STARTER, products: [{ kind: 'recurring', product_key: 'f', name: 'F', price: { model: 'flat', amount: '9.999' } }] };
    expect(codes(p)).toEqual(['too_many_decimals@products[0].price.amount']);
  });
});
