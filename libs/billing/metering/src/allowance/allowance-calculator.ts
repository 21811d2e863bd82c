/**
 * Allowance state of a subscription's period from its usage quantities (SPEC §3). Pure: every
 * figure comes from @closebook/rating — `periodAllowance` for the included quantity (per seat,
 * multiplier, prorata for a partial period) and `rateUsage` for drawdown, overage, price and cap —
 * built exactly as `ratePeriodInvoice` builds them, so the estimate and the invoice cannot disagree
 * on a rule.
 */
import { dec, Decimal, formatDecimal, getCurrency, Money } from '@closebook/money';
import {
  classifyTransition,
  keyTerms,
  liveGrants,
  periodAllowance,
  periodContaining,
  periodGrant,
  rateUsage,
  type AllowanceGrant,
  type AllowanceState,
  type MeteredPlanProduct,
  type RatingPlanVersion,
} from '@closebook/rating';

export interface DimensionUsage {
  product_key: string;
  /** The rollup's price key: '' when the product is unkeyed (or the event lacked the key). */
  price_key: string;
  quantity: string;
}

export interface AllowanceStateInput {
  subscription_id: string;
  plan: RatingPlanVersion;
  /** Seats at the period start; `seat_segments` (when given) describe changes inside the period. */
  seats: number;
  /** Seat counts in force from each instant, sorted; the first applies at the period start. */
  seat_segments?: { from: string; seats: number }[];
  anchor_day: number;
  /** The billing period row: [start, end), 00:00 UTC bounds (a first or last period may be partial). */
  period: { start: string; end: string };
  usage: DimensionUsage[];
  /** Grants carried into the period (rollover ledger); the period's own grant is made here. */
  grants?: AllowanceGrant[];
}

export interface DimensionState extends AllowanceState {
  product_name: string;
  overage_mode: 'bill' | 'block';
}

/** Usage the plan cannot price (a keyed product's event without the key, a key with no price). */
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
  /** Σ rounded billable overage across dimensions. */
  overage_so_far: { amount: string; currency: string };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function meteredProductsOf(plan: RatingPlanVersion): MeteredPlanProduct[] {
  return (plan.products ?? []).filter((p): p is MeteredPlanProduct => p.kind === 'metered');
}

export function allowanceStates(input: AllowanceStateInput): AllowanceStates {
  const cur = getCurrency(input.plan.currency);
  const period = { start: new Date(input.period.start).toISOString(), end: new Date(input.period.end).toISOString() };
  const cycle = periodContaining(input.anchor_day, period.start);
  const dimensions: DimensionState[] = [];
  const unpriced: UnpricedUsage[] = [];
  let total = Money.zero(cur);
  // Seat changes inside the period are segments, classified as ratePeriodInvoice classifies them
  // (more seats cost more: an upgrade, whose allowance never falls below the previous terms').
  const raw = input.seat_segments?.length ? input.seat_segments : [{ from: period.start, seats: input.seats }];
  const seatSegments = raw.map((seg, i) => ({
    from: i === 0 ? period.start : new Date(seg.from).toISOString(),
    seats: seg.seats,
    transition: i === 0 ? null : classifyTransition({ plan: input.plan, seats: raw[i - 1].seats }, { plan: input.plan, seats: seg.seats }),
  }));

  for (const product of meteredProductsOf(input.plan)) {
    const pk = product.product_key;
    const byKey = new Map<string, Decimal>();
    for (const u of input.usage) {
      if (u.product_key !== pk) continue;
      byKey.set(u.price_key, (byKey.get(u.price_key) ?? dec(0)).plus(dec(u.quantity)));
    }
    let keys: (string | null)[];
    if (product.keyed_prices) {
      const ks = new Set(product.keyed_prices.map((k) => k.key).filter((k) => k !== '*'));
      for (const [k, q] of byKey) {
        if (k !== '') ks.add(k);
        else if (q.gt(0)) {
          unpriced.push({
            product_key: pk,
            price_key: '',
            quantity: formatDecimal(q),
            code: 'price_key_required',
            reason: `${pk} is priced by ${product.price_key_label ?? 'a key'}; these events do not carry it`,
          });
        }
      }
      keys = [...ks].sort(cmp);
    } else {
      keys = [null];
    }

    for (const key of keys) {
      const quantity = key === null ? [...byKey.values()].reduce((a, b) => a.plus(b), dec(0)) : byKey.get(key) ?? dec(0);
      const terms = keyTerms(product, key);
      if (!terms) {
        if (quantity.gt(0)) {
          unpriced.push({
            product_key: pk,
            price_key: key ?? '',
            quantity: formatDecimal(quantity),
            code: 'unpriced_usage',
            reason: `${pk} has no price for ${product.price_key_label ?? 'key'} ${JSON.stringify(key)}`,
          });
        }
        continue;
      }
      const pa = periodAllowance({
        cycle,
        period,
        segments: seatSegments.map((seg) => ({
          from: seg.from,
          allowance: terms.allowance,
          allowance_basis: product.allowance_basis ?? 'fixed',
          ...(input.plan.allowance_multiplier !== undefined ? { allowance_multiplier: input.plan.allowance_multiplier } : {}),
          seats: seg.seats,
          transition: seg.transition,
          label: `${input.plan.name} v${input.plan.version}${product.allowance_basis === 'per_seat' ? `, ${seg.seats} seats` : ''}`,
        })),
      });
      const grantId = `${input.subscription_id}:${pk}:${key ?? '-'}:${period.start}`;
      const own = pa.included.gt(0) ? periodGrant({ grant_id: grantId, period, quantity: pa.included, product_key: pk, price_key: key }) : null;
      const carried = liveGrants(
        (input.grants ?? []).filter((g) => g.product_key === pk && (g.price_key ?? null) === key && g.grant_id !== grantId),
        period.start,
      );
      const rated = rateUsage({
        product_key: pk,
        product_name: product.name,
        unit: product.unit,
        price_key_label: product.price_key_label ?? null,
        period,
        currency: cur.code,
        overage: product.overage ?? 'bill',
        keys: [
          {
            key,
            quantity: formatDecimal(quantity),
            price: terms.price,
            grants: [...(own ? [own] : []), ...carried],
            allowance_steps: pa.steps,
            period_grant_id: grantId,
          },
        ],
      });
      dimensions.push({ ...rated.states[0], product_name: product.name, overage_mode: product.overage ?? 'bill' });
      total = total.plus(Money.parse(rated.billable_usage.amount, cur));
    }
  }
  return { currency: cur.code, dimensions, unpriced, overage_so_far: { amount: total.format(), currency: cur.code } };
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
