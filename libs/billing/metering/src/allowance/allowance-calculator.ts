/**
 * Allowance state of a subscription's period from its usage quantities (SPEC §3). Pure, and every
 * figure is the rating core's: the usage is rated by `ratePeriodInvoice` itself — prorata allowance
 * over the period's segments (plan changes, seat changes, per-seat bases, multiplier, partial
 * periods), rollover grants drawn first, overage priced at the plan in force at the end, `block`
 * caps — so the estimate is what the period invoice would say if the period closed now.
 */
import { dec, formatDecimal, getCurrency } from '@closebook/money';
import {
  keyTerms,
  ratePeriodInvoice,
  type AllowanceGrant,
  type AllowanceState,
  type MeteredPlanProduct,
  type RatingPlanVersion,
  type StateSegment,
  type UsageQuantity,
} from '@closebook/rating';

export interface DimensionUsage {
  product_key: string;
  /** The rollup's price key: '' when the product is unkeyed (or the event lacked the key). */
  price_key: string;
  quantity: string;
}

export interface PeriodAllowanceInput {
  subscription_id: string;
  subscription_start: string;
  anchor_day: number;
  /** The billing period row: [start, end), 00:00 UTC bounds (a first or last period may be partial). */
  period: { start: string; end: string };
  /** The states in force during the period, sorted; the first is in force at its start. */
  segments: StateSegment[];
  usage: DimensionUsage[];
  /** Grants carried into the period (rollover ledger); the period's own grants are made by rating. */
  grants?: AllowanceGrant[];
}

export interface DimensionState extends AllowanceState {
  product_name: string;
  overage_mode: 'bill' | 'block';
}

/** Usage the plans cannot price (a keyed product's event without the key, a key with no price, a product no plan has). */
export interface UnpricedUsage {
  product_key: string;
  price_key: string;
  quantity: string;
  code: 'price_key_required' | 'unpriced_usage';
  reason: string;
}

export interface AllowanceStates {
  currency: string;
  dimensions: DimensionState[];
  unpriced: UnpricedUsage[];
  /** Σ rounded billable overage across dimensions (the period invoice's overage total). */
  overage_so_far: { amount: string; currency: string };
}

export function meteredProductsOf(plan: RatingPlanVersion): MeteredPlanProduct[] {
  return (plan.products ?? []).filter((p): p is MeteredPlanProduct => p.kind === 'metered');
}

/** The product as the plan pricing it sees it: the last segment's plan that has it (rating rule 20). */
function pricingProduct(segments: readonly StateSegment[], productKey: string): MeteredPlanProduct | undefined {
  for (let i = segments.length - 1; i >= 0; i--) {
    const p = meteredProductsOf(segments[i].plan).find((x) => x.product_key === productKey);
    if (p) return p;
  }
  return undefined;
}

export function periodAllowanceStates(input: PeriodAllowanceInput): AllowanceStates {
  const priced: UsageQuantity[] = [];
  const unpriced: UnpricedUsage[] = [];
  for (const u of input.usage) {
    const q = dec(u.quantity);
    if (!q.gt(0)) continue;
    const product = pricingProduct(input.segments, u.product_key);
    const key = u.price_key === '' ? null : u.price_key;
    if (!product || !keyTerms(product, key)) {
      const keyless = !!product?.keyed_prices && key === null;
      unpriced.push({
        product_key: u.product_key,
        price_key: u.price_key,
        quantity: formatDecimal(q),
        code: keyless ? 'price_key_required' : 'unpriced_usage',
        reason: !product
          ? `no plan in force during the period has ${u.product_key}`
          : keyless
            ? `${u.product_key} is priced by ${product.price_key_label ?? 'a key'}; these events do not carry it`
            : `${u.product_key} has no price for ${product.price_key_label ?? 'key'} ${JSON.stringify(u.price_key)}`,
      });
      continue;
    }
    priced.push({ product_key: u.product_key, price_key: key, quantity: formatDecimal(q) });
  }
  const invoice = ratePeriodInvoice({
    subscription_id: input.subscription_id,
    subscription_start: input.subscription_start,
    anchor_day: input.anchor_day,
    period: input.period,
    segments: input.segments,
    renews: false,
    usage: priced,
    grants: input.grants ?? [],
  });
  const currency = getCurrency(invoice.currency).code;
  return {
    currency,
    dimensions: invoice.allowance.map((a) => {
      const p = pricingProduct(input.segments, a.product_key);
      return { ...a, product_name: p?.name ?? a.product_key, overage_mode: p?.overage ?? 'bill' };
    }),
    unpriced,
    overage_so_far: { amount: invoice.overage_total, currency },
  };
}

export const ALLOWANCE_THRESHOLDS = [80, 100] as const;
export type AllowanceThreshold = (typeof ALLOWANCE_THRESHOLDS)[number];

/** The thresholds (% of included + rolled over) a dimension's usage has reached, compared exactly. */
export function thresholdsReached(d: Pick<AllowanceState, 'included' | 'rolled_over' | 'used'>): AllowanceThreshold[] {
  const available = dec(d.included).plus(dec(d.rolled_over));
  if (!available.gt(0)) return [];
  const used100 = dec(d.used).times(100);
  return ALLOWANCE_THRESHOLDS.filter((t) => used100.gte(available.times(t)));
}
