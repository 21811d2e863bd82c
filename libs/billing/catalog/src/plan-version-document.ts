/**
 * Builds a plan version's `RatingPlanVersion` document from the API's version input, the plan and
 * the catalog products, and reports every problem as an `Issue` whose field is a path into the
 * request body (`products[2].price.tiers[1].up_to`). Pure: no Nest, no I/O.
 *
 * Catalog rules live here (unknown product, kinds, terms per kind, keyed prices vs the product's
 * price_key_label, declared price currencies); price and term rules are the rating core's
 * `validatePlanVersion`, never re-implemented here.
 */
import { validatePlanVersion, type Issue, type KeyedPrice, type PlanProduct, type PriceModel, type RatingPlanVersion } from '@closebook/rating';
import type { ProductKind } from './entities/product.entity';

export interface VersionPriceInput {
  [field: string]: unknown;
}

export interface VersionProductInput {
  product_key: string;
  allowance?: string;
  allowance_basis?: 'fixed' | 'per_seat';
  rollover_enabled?: boolean;
  rollover_cap?: string | null;
  rollover_expiry_periods?: number;
  overage?: 'bill' | 'block';
  included_seats?: number;
  price?: VersionPriceInput;
  keyed_prices?: { key: string; price: VersionPriceInput; allowance?: string }[];
}

export interface PlanVersionInput {
  allowance_multiplier?: string;
  products: VersionProductInput[];
}

/** What the builder needs to know of the plan. */
export interface PlanFacts {
  key: string;
  name: string;
  currency: string;
  interval: 'month' | 'year';
  allowanceRolloverDefault: boolean;
  prorationStrategy?: RatingPlanVersion['proration_strategy'] | null;
}

/** What the builder needs to know of a catalog product. */
export interface ProductFacts {
  id: string;
  key: string;
  name: string;
  kind: ProductKind;
  unit?: string | null;
  meterEventName?: string | null;
  priceKeyLabel?: string | null;
}

export interface BuiltVersion {
  document: RatingPlanVersion;
  /** Product id of each document product, same order. */
  productIds: string[];
  issues: Issue[];
}

const TERMS = ['allowance', 'allowance_basis', 'rollover_enabled', 'rollover_cap', 'rollover_expiry_periods', 'overage', 'included_seats', 'price', 'keyed_prices'] as const;

/** The terms each kind of product may carry in a plan version. */
const TERMS_BY_KIND: Record<Exclude<ProductKind, 'one_time'>, readonly (typeof TERMS)[number][]> = {
  recurring: ['price'],
  seat: ['price', 'included_seats'],
  addon: ['price'],
  metered: ['allowance', 'allowance_basis', 'rollover_enabled', 'rollover_cap', 'rollover_expiry_periods', 'overage', 'price', 'keyed_prices'],
};

/** A price as the API takes it may declare its `currency`; the stored model never carries it. */
function splitCurrency(price: VersionPriceInput | undefined): { model: PriceModel | undefined; currency: unknown } {
  if (price === undefined || price === null || typeof price !== 'object') return { model: price as PriceModel | undefined, currency: undefined };
  const { currency, ...model } = price;
  return { model: model as unknown as PriceModel, currency };
}

export function buildPlanVersionDocument(
  plan: PlanFacts,
  version: number,
  input: PlanVersionInput,
  productsByKey: ReadonlyMap<string, ProductFacts>,
): BuiltVersion {
  const issues: Issue[] = [];
  const push = (code: string, field: string, message: string) => issues.push({ code, field, message });
  const declared: { currency: unknown; field: string }[] = [];
  const products: PlanProduct[] = [];
  const productIds: string[] = [];

  input.products.forEach((item, i) => {
    const at = (rest: string) => `products[${i}].${rest}`;
    const product = productsByKey.get(item.product_key);
    if (!product) {
      push('unknown_product', at('product_key'), `no product with key "${item.product_key}" exists in the catalog`);
      return;
    }
    if (product.kind === 'one_time') {
      push('product_kind_not_allowed', at('product_key'), `${product.key} is a one_time product: it is billed as an on-demand charge, not in a plan version`);
      return;
    }
    if (product.kind === 'metered' && !product.meterEventName) {
      push('meter_required', at('product_key'), `${product.key} is a metered product without a meter`);
      return;
    }
    const allowed = TERMS_BY_KIND[product.kind];
    for (const term of TERMS) {
      if (item[term] !== undefined && !allowed.includes(term)) {
        push('term_not_allowed', at(term), `${term} does not apply to a ${product.kind} product (${product.key})`);
      }
    }
    if (product.kind === 'metered') {
      if (product.priceKeyLabel && item.keyed_prices === undefined) {
        push('keyed_prices_required', at('keyed_prices'), `${product.key} prices by "${product.priceKeyLabel}": give keyed_prices (use key "*" for one price for every value)`);
      }
      if (!product.priceKeyLabel && item.keyed_prices !== undefined) {
        push('price_key_label_missing', at('keyed_prices'), `${product.key} has no price_key_label, so it cannot have keyed prices`);
      }
    }

    const { model: price, currency } = splitCurrency(item.price);
    if (item.price !== undefined && currency !== undefined) declared.push({ currency, field: at('price.currency') });
    const keyed: KeyedPrice[] | undefined = item.keyed_prices?.map((kp, j) => {
      const split = splitCurrency(kp.price);
      if (kp.price !== undefined && split.currency !== undefined) declared.push({ currency: split.currency, field: at(`keyed_prices[${j}].price.currency`) });
      return { key: kp.key, price: split.model as PriceModel, allowance: kp.allowance ?? '0' };
    });

    productIds.push(product.id);
    switch (product.kind) {
      case 'recurring':
      case 'addon':
        products.push({ kind: product.kind, product_key: product.key, name: product.name, price: price as PriceModel });
        break;
      case 'seat':
        products.push({ kind: 'seat', product_key: product.key, name: product.name, included_seats: item.included_seats ?? 0, price: price as PriceModel });
        break;
      case 'metered':
        products.push({
          kind: 'metered',
          product_key: product.key,
          name: product.name,
          unit: product.unit ?? '',
          allowance_basis: item.allowance_basis ?? 'fixed',
          rollover_enabled: item.rollover_enabled ?? plan.allowanceRolloverDefault,
          ...(item.rollover_cap !== undefined && item.rollover_cap !== null ? { rollover_cap: item.rollover_cap } : {}),
          rollover_expiry_periods: item.rollover_expiry_periods ?? 1,
          overage: item.overage ?? 'bill',
          ...(keyed
            ? { price_key_label: product.priceKeyLabel ?? '', keyed_prices: keyed }
            : { allowance: item.allowance ?? '0', price: price as PriceModel }),
        });
        break;
    }
  });

  // Declared currencies: one currency for every price of the version, and it is the plan's.
  if (declared.length) {
    const first = declared[0];
    const other = declared.find((d) => d.currency !== first.currency);
    if (other) {
      push('mixed_currencies', other.field, `prices in one plan version must share one currency: ${String(first.currency)} at ${first.field}, ${String(other.currency)} at ${other.field}`);
    } else if (first.currency !== plan.currency) {
      push('currency_mismatch', first.field, `plan ${plan.key} is priced in ${plan.currency}, but ${first.field} is ${String(first.currency)}`);
    }
  }

  const document: RatingPlanVersion = {
    plan_key: plan.key,
    version,
    name: plan.name,
    currency: plan.currency,
    interval: plan.interval,
    allowance_multiplier: input.allowance_multiplier ?? '1',
    allowance_rollover_default: plan.allowanceRolloverDefault,
    ...(plan.prorationStrategy ? { proration_strategy: plan.prorationStrategy } : {}),
    products,
  };
  // Rating rules run on a document whose products line up with the request's (same indexes).
  if (!issues.length) issues.push(...validatePlanVersion(document));
  return { document, productIds, issues };
}
