/**
 * The rating view of a pinned plan version and of a subscription's state (SPEC §1, §2). The
 * catalog stores plan-version products in these shapes; subscriptions pin them.
 */
import { Currency, dec } from '@closebook/money';
import { AllowanceBasis, OverageMode, TransitionKind } from './allowance';
import { Issue, RatingError } from './errors';
import { PriceModel, validatePriceModel } from './price-models';
import { currencyOf, isDecimalString, PRICE_SCALE, scaleOf, show } from './util';

export type ProrationStrategy = 'prorated_immediately' | 'prorated_next_invoice' | 'difference_immediately' | 'full_immediately';
export const PRORATION_STRATEGIES: readonly ProrationStrategy[] = [
  'prorated_immediately',
  'prorated_next_invoice',
  'difference_immediately',
  'full_immediately',
];
export const DEFAULT_PRORATION_STRATEGY: ProrationStrategy = 'prorated_immediately';

export type PlanInterval = 'month' | 'year';

interface ProductCommon {
  product_key: string;
  name: string;
}

/** The plan's flat fee (`price` must be `flat`). */
export interface RecurringPlanProduct extends ProductCommon {
  kind: 'recurring';
  price: PriceModel;
}

/** Seats: `included_seats` free, `price` for the rest (per_unit, or tiers over the extra seats). */
export interface SeatPlanProduct extends ProductCommon {
  kind: 'seat';
  included_seats?: number;
  price: PriceModel;
}

/** A recurring feature add-on the subscription may take, priced on its quantity. */
export interface AddonPlanProduct extends ProductCommon {
  kind: 'addon';
  price: PriceModel;
}

/** One key value of a keyed metered price, with its own rate and allowance. `*` matches any other key. */
export interface KeyedPrice {
  key: string;
  price: PriceModel;
  allowance?: string;
}

export interface MeteredPlanProduct extends ProductCommon {
  kind: 'metered';
  /** Display unit: "calls", "GB", "build-minutes". */
  unit: string;
  /** Included per usage cycle (unkeyed prices; keyed prices carry their own). Default 0. */
  allowance?: string;
  allowance_basis?: AllowanceBasis;
  /** Default: the plan's allowance_rollover_default. */
  rollover_enabled?: boolean;
  /** Max units carried per carry; default one allowance. */
  rollover_cap?: string | null;
  rollover_expiry_periods?: number;
  overage?: OverageMode;
  /** Unkeyed price. */
  price?: PriceModel;
  /** Keyed prices: the event property priced by (e.g. "environment") and one price per value. */
  price_key_label?: string;
  keyed_prices?: KeyedPrice[];
}

export type PlanProduct = RecurringPlanProduct | SeatPlanProduct | AddonPlanProduct | MeteredPlanProduct;

export interface RatingPlanVersion {
  plan_key: string;
  version: number;
  name: string;
  currency: string;
  /** Interval of the flat fees (base fee, seats, add-ons); allowances always renew monthly. */
  interval: PlanInterval;
  /** E.g. "1.2": 20% more allowance every cycle. Default 1. */
  allowance_multiplier?: string;
  allowance_rollover_default?: boolean;
  proration_strategy?: ProrationStrategy;
  products: PlanProduct[];
}

export interface SubscriptionAddon {
  product_key: string;
  /** Default 1. */
  quantity?: number;
  /** Used when the plan version does not list the add-on. */
  name?: string;
  price?: PriceModel;
}

export interface SubscriptionState {
  plan: RatingPlanVersion;
  /** Default 1. */
  seats?: number;
  addons?: SubscriptionAddon[];
}

/** Every problem with a plan version document (empty = valid). */
export function validatePlanVersion(plan: unknown, prefix = ''): Issue[] {
  const issues: Issue[] = [];
  const at = (rest: string) => (prefix ? `${prefix}.${rest}` : rest);
  const push = (code: string, field: string, message: string) => issues.push({ code, field, message });
  if (plan === null || typeof plan !== 'object') {
    push('invalid_plan', prefix, 'a plan version must be an object');
    return issues;
  }
  const p = plan as Record<string, unknown>;
  for (const k of ['plan_key', 'name']) if (typeof p[k] !== 'string' || p[k] === '') push('required', at(k), `${k} is required`);
  if (!Number.isSafeInteger(p.version) || (p.version as number) < 1) push('invalid_version', at('version'), 'version must be a positive integer');
  let cur: Currency | null = null;
  try {
    cur = currencyOf(p.currency as string);
  } catch {
    push('unknown_currency', at('currency'), `${show(p.currency)} is not a known ISO 4217 currency code`);
  }
  if (p.interval !== 'month' && p.interval !== 'year') push('invalid_interval', at('interval'), 'interval must be month or year');
  if (p.allowance_multiplier !== undefined) {
    if (!isDecimalString(p.allowance_multiplier) || dec(p.allowance_multiplier).isNegative() || scaleOf(p.allowance_multiplier) > PRICE_SCALE) {
      push('invalid_decimal', at('allowance_multiplier'), 'allowance_multiplier must be a non-negative decimal string');
    }
  }
  if (p.proration_strategy !== undefined && !(PRORATION_STRATEGIES as readonly unknown[]).includes(p.proration_strategy)) {
    push('invalid_proration_strategy', at('proration_strategy'), `proration_strategy must be one of ${PRORATION_STRATEGIES.join(', ')}`);
  }
  if (!Array.isArray(p.products)) {
    push('required', at('products'), 'products must be an array');
    return issues;
  }
  const keys = new Set<string>();
  let seatProducts = 0;
  p.products.forEach((raw: unknown, i: number) => {
    const f = (rest: string) => at(`products[${i}].${rest}`);
    if (raw === null || typeof raw !== 'object') {
      push('invalid_product', at(`products[${i}]`), 'a product must be an object');
      return;
    }
    const prod = raw as Record<string, unknown>;
    if (typeof prod.product_key !== 'string' || prod.product_key === '') push('required', f('product_key'), 'product_key is required');
    else if (keys.has(prod.product_key)) push('duplicate_product', f('product_key'), `${prod.product_key} is listed twice`);
    else keys.add(prod.product_key);
    if (typeof prod.name !== 'string' || prod.name === '') push('required', f('name'), 'name is required');
    const priceIssues = (v: unknown, field: string, flatCurrency = false) =>
      issues.push(...validatePriceModel(v, { field, ...(flatCurrency && cur ? { currency: cur } : {}) }));
    switch (prod.kind) {
      case 'recurring':
        priceIssues(prod.price, f('price'), true);
        if ((prod.price as { model?: unknown })?.model !== 'flat') push('flat_price_required', f('price.model'), 'a recurring fee is a flat price');
        break;
      case 'seat':
        seatProducts++;
        if (prod.included_seats !== undefined && (!Number.isSafeInteger(prod.included_seats) || (prod.included_seats as number) < 0)) {
          push('invalid_count', f('included_seats'), 'included_seats must be a non-negative integer');
        }
        priceIssues(prod.price, f('price'));
        break;
      case 'addon':
        priceIssues(prod.price, f('price'));
        break;
      case 'metered': {
        if (typeof prod.unit !== 'string' || prod.unit === '') push('required', f('unit'), 'unit is required');
        if (prod.allowance_basis !== undefined && prod.allowance_basis !== 'fixed' && prod.allowance_basis !== 'per_seat') {
          push('invalid_allowance_basis', f('allowance_basis'), 'allowance_basis must be fixed or per_seat');
        }
        if (prod.overage !== undefined && prod.overage !== 'bill' && prod.overage !== 'block') push('invalid_overage_mode', f('overage'), 'overage must be bill or block');
        const nonNeg = (v: unknown, field: string) => {
          if (v !== undefined && v !== null && (!isDecimalString(v) || dec(v).isNegative() || scaleOf(v) > PRICE_SCALE)) {
            push('invalid_decimal', field, `${field} must be a non-negative decimal string with at most ${PRICE_SCALE} decimals`);
          }
        };
        nonNeg(prod.allowance, f('allowance'));
        nonNeg(prod.rollover_cap, f('rollover_cap'));
        if (prod.rollover_expiry_periods !== undefined && (!Number.isSafeInteger(prod.rollover_expiry_periods) || (prod.rollover_expiry_periods as number) < 1 || (prod.rollover_expiry_periods as number) > 120)) {
          push('invalid_rollover_expiry', f('rollover_expiry_periods'), 'rollover_expiry_periods must be an integer 1..120');
        }
        const keyed = prod.keyed_prices;
        if (keyed !== undefined) {
          if (prod.price !== undefined) push('price_conflict', f('price'), 'a keyed product has no unkeyed price');
          if (prod.allowance !== undefined) push('allowance_conflict', f('allowance'), 'keyed prices carry their own allowance');
          if (typeof prod.price_key_label !== 'string' || prod.price_key_label === '') push('required', f('price_key_label'), 'price_key_label is required with keyed prices');
          if (!Array.isArray(keyed) || keyed.length === 0) push('required', f('keyed_prices'), 'keyed_prices must be a non-empty array');
          else {
            const seen = new Set<string>();
            keyed.forEach((kp: unknown, j: number) => {
              const kf = (rest: string) => f(`keyed_prices[${j}].${rest}`);
              const k = (kp as KeyedPrice | null)?.key;
              if (typeof k !== 'string' || k === '') push('required', kf('key'), 'key is required');
              else if (seen.has(k)) push('duplicate_price_key', kf('key'), `key ${k} is listed twice`);
              else seen.add(k);
              priceIssues((kp as KeyedPrice | null)?.price, kf('price'));
              nonNeg((kp as KeyedPrice | null)?.allowance, kf('allowance'));
            });
          }
        } else {
          priceIssues(prod.price, f('price'));
        }
        break;
      }
      default:
        push('invalid_product_kind', f('kind'), `kind must be recurring, seat, addon or metered, got ${show(prod.kind)}`);
    }
  });
  if (seatProducts > 1) push('duplicate_seat_product', at('products'), 'a plan version has at most one seat product');
  return issues;
}

export function assertValidPlanVersion(plan: unknown, prefix = 'plan'): asserts plan is RatingPlanVersion {
  const issues = validatePlanVersion(plan, prefix);
  if (issues.length) throw RatingError.fromIssues(issues);
}

export function meteredProducts(plan: RatingPlanVersion): MeteredPlanProduct[] {
  return plan.products.filter((p): p is MeteredPlanProduct => p.kind === 'metered');
}

export function findMetered(plan: RatingPlanVersion, productKey: string): MeteredPlanProduct | undefined {
  return meteredProducts(plan).find((p) => p.product_key === productKey);
}

/** The price and allowance of one key of a metered product (`*` is the fallback key). */
export function keyTerms(product: MeteredPlanProduct, key: string | null): { price: PriceModel; allowance: string } | null {
  if (product.keyed_prices) {
    if (key === null) return null;
    const kp = product.keyed_prices.find((x) => x.key === key) ?? product.keyed_prices.find((x) => x.key === '*');
    return kp ? { price: kp.price, allowance: kp.allowance ?? '0' } : null;
  }
  if (key !== null || !product.price) return null;
  return { price: product.price, allowance: product.allowance ?? '0' };
}

export function stateSeats(s: SubscriptionState): number {
  const seats = s.seats ?? 1;
  if (!Number.isSafeInteger(seats) || seats < 0) throw new RatingError('invalid_count', 'seats must be a non-negative integer', 'seats');
  return seats;
}

/** The one currency shared by every plan of a rating. */
export function planCurrency(states: readonly SubscriptionState[]): Currency {
  const codes = new Set(states.map((s) => s.plan.currency));
  if (codes.size !== 1) throw new RatingError('currency_mismatch', `plans in one rating must share a currency, got ${[...codes].join(', ')}`, 'plan.currency');
  return currencyOf(states[0].plan.currency, 'plan.currency');
}

export type { TransitionKind };
