import { buildPlanVersionDocument, type PlanFacts, type ProductFacts } from './plan-version-document';

const plan: PlanFacts = { key: 'pro', name: 'Pro', currency: 'JPY', interval: 'month', allowanceRolloverDefault: true, prorationStrategy: null };
const products = new Map<string, ProductFacts>(
  [
    { id: '1', key: 'fee', name: 'Fee', kind: 'recurring' },
    { id: '2', key: 'calls', name: 'Calls', kind: 'metered', unit: 'calls', meterEventName: 'api.call' },
    { id: '3', key: 'setup', name: 'Setup', kind: 'one_time' },
  ].map((p) => [p.key, p as ProductFacts]),
);

describe('buildPlanVersionDocument', () => {
  it('resolves defaults from the plan and copies names and units from the products', () => {
    const built = buildPlanVersionDocument(plan, 2, { products: [{ product_key: 'fee', price: { model: 'flat', amount: '1000' } }, { product_key: 'calls', price: { model: 'per_unit', unit_amount: '0.5' } }] }, products);
    expect(built.issues).toEqual([]);
    expect(built.productIds).toEqual(['1', '2']);
    expect(built.document).toEqual({
      plan_key: 'pro',
      version: 2,
      name: 'Pro',
      currency: 'JPY',
      interval: 'month',
      allowance_multiplier: '1',
      allowance_rollover_default: true,
      products: [
        { kind: 'recurring', product_key: 'fee', name: 'Fee', price: { model: 'flat', amount: '1000' } },
        { kind: 'metered', product_key: 'calls', name: 'Calls', unit: 'calls', allowance_basis: 'fixed', rollover_enabled: true, rollover_expiry_periods: 1, overage: 'bill', allowance: '0', price: { model: 'per_unit', unit_amount: '0.5' } },
      ],
    });
  });

  it("reports catalog issues by request path, and the rating core's issues for prices", () => {
    const issues = (input: Parameters<typeof buildPlanVersionDocument>[2]) => buildPlanVersionDocument(plan, 1, input, products).issues.map((i) => `${i.code} ${i.field}`);
    expect(issues({ products: [{ product_key: 'setup', price: { model: 'flat', amount: '1' } }] })).toEqual(['product_kind_not_allowed products[0].product_key']);
    expect(issues({ products: [{ product_key: 'fee', included_seats: 2, price: { model: 'flat', amount: '1' } }] })).toEqual(['term_not_allowed products[0].included_seats']);
    // JPY has no minor unit: a fractional flat fee is refused by the rating core.
    expect(issues({ products: [{ product_key: 'fee', price: { model: 'flat', amount: '1000.5' } }] })).toEqual(['too_many_decimals products[0].price.amount']);
    expect(issues({ products: [{ product_key: 'fee', price: { model: 'flat', amount: '1000', currency: 'USD' } }] })).toEqual(['currency_mismatch products[0].price.currency']);
  });
});
