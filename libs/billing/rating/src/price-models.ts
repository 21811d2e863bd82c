/**
 * Price models (SPEC §1). JSON shapes stored by the catalog exactly as defined here: every
 * decimal is a string in plain notation ("0.005", never 5e-3 or a number).
 */
import { Currency, Decimal, dec } from '@closebook/money';
import { Issue, RatingError } from './errors';
import { StepLog, Step, Val } from './steps';
import { currencyOf, fmtPrice, fmtQty, isDecimalString, PRICE_SCALE, scaleOf, show, str, ZERO } from './util';

export interface Tier {
  /** Inclusive upper bound of the tier in units; `null` on the last tier only (open-ended). */
  up_to: string | null;
  unit_amount: string;
  /** Charged once when any quantity falls in the tier (graduated) / reaches it (volume). */
  flat_amount?: string;
}

export interface FlatPrice {
  model: 'flat';
  /** Amount per period; for a quantity it is charged once when the quantity is > 0. */
  amount: string;
}
export interface PerUnitPrice {
  model: 'per_unit';
  unit_amount: string;
}
export interface PackagePrice {
  model: 'package';
  /** Units per package (> 0); every started package is charged (ceil). */
  package_size: string;
  package_amount: string;
}
export interface GraduatedPrice {
  model: 'graduated';
  tiers: Tier[];
}
export interface VolumePrice {
  model: 'volume';
  tiers: Tier[];
}

export type PriceModel = FlatPrice | PerUnitPrice | PackagePrice | GraduatedPrice | VolumePrice;
export type PriceModelKind = PriceModel['model'];
export const PRICE_MODELS: readonly PriceModelKind[] = ['flat', 'per_unit', 'package', 'graduated', 'volume'];
export const MAX_TIERS = 100;

const ALLOWED_KEYS: Record<PriceModelKind, readonly string[]> = {
  flat: ['model', 'amount'],
  per_unit: ['model', 'unit_amount'],
  package: ['model', 'package_size', 'package_amount'],
  graduated: ['model', 'tiers'],
  volume: ['model', 'tiers'],
};

export interface ValidatePriceOptions {
  /** Path prefix for issue fields, e.g. `products[2].price`. */
  field?: string;
  /**
   * When given, a `flat` model's `amount` must fit the currency's minor unit (a flat fee of
   * $49.001 is refused). Unit prices, package and tier amounts may always have up to 12 decimals.
   */
  currency?: string | Currency;
}

function path(prefix: string | undefined, rest: string): string {
  if (!prefix) return rest;
  return rest.startsWith('[') ? `${prefix}${rest}` : `${prefix}.${rest}`;
}

/**
 * Every problem with a price model (empty list = valid). Codes: `invalid_price_model`,
 * `unknown_model`, `unknown_field`, `required`, `invalid_decimal`, `too_many_decimals`,
 * `negative_not_allowed`, `not_positive`, `tiers_empty`, `too_many_tiers`, `tier_not_ascending`,
 * `open_tier_not_last`, `last_tier_not_open`.
 */
export function validatePriceModel(p: unknown, opts: ValidatePriceOptions = {}): Issue[] {
  const issues: Issue[] = [];
  const at = (rest: string) => path(opts.field, rest);
  const push = (code: string, field: string, message: string) => issues.push({ code, field, message });

  if (p === null || typeof p !== 'object' || Array.isArray(p)) {
    push('invalid_price_model', opts.field ?? '', 'a price model must be an object');
    return issues;
  }
  const obj = p as Record<string, unknown>;
  const model = obj.model;
  if (typeof model !== 'string' || !(PRICE_MODELS as readonly string[]).includes(model)) {
    push('unknown_model', at('model'), `model must be one of ${PRICE_MODELS.join(', ')}, got ${show(model)}`);
    return issues;
  }
  const kind = model as PriceModelKind;
  for (const k of Object.keys(obj)) {
    if (!ALLOWED_KEYS[kind].includes(k)) push('unknown_field', at(k), `${k} is not a field of a ${kind} price`);
  }

  /** Checks a decimal field; returns it when valid. */
  const decimalField = (v: unknown, field: string, maxScale: number, mustBePositive = false): Decimal | null => {
    if (v === undefined || v === null) {
      push('required', field, `${field} is required`);
      return null;
    }
    if (!isDecimalString(v)) {
      push('invalid_decimal', field, `${field} must be a decimal string like "0.005", got ${show(v)}`);
      return null;
    }
    let ok = true;
    if (scaleOf(v) > maxScale) {
      push('too_many_decimals', field, `${field} has ${scaleOf(v)} decimal places; at most ${maxScale} allowed`);
      ok = false;
    }
    const d = dec(v);
    if (d.isNegative() && !d.isZero()) {
      push('negative_not_allowed', field, `${field} must not be negative`);
      ok = false;
    } else if (mustBePositive && d.isZero()) {
      push('not_positive', field, `${field} must be greater than 0`);
      ok = false;
    }
    return ok ? d : null;
  };

  switch (kind) {
    case 'flat': {
      let scale = PRICE_SCALE;
      if (opts.currency !== undefined) scale = currencyOf(opts.currency).minorUnits;
      decimalField(obj.amount, at('amount'), scale);
      break;
    }
    case 'per_unit':
      decimalField(obj.unit_amount, at('unit_amount'), PRICE_SCALE);
      break;
    case 'package':
      decimalField(obj.package_size, at('package_size'), PRICE_SCALE, true);
      decimalField(obj.package_amount, at('package_amount'), PRICE_SCALE);
      break;
    case 'graduated':
    case 'volume': {
      const tiers = obj.tiers;
      if (!Array.isArray(tiers)) {
        push(tiers === undefined ? 'required' : 'invalid_price_model', at('tiers'), 'tiers must be a non-empty array');
        break;
      }
      if (tiers.length === 0) {
        push('tiers_empty', at('tiers'), 'at least one tier is required');
        break;
      }
      if (tiers.length > MAX_TIERS) push('too_many_tiers', at('tiers'), `at most ${MAX_TIERS} tiers`);
      let prev: Decimal | null = null;
      tiers.forEach((t: unknown, i: number) => {
        const tp = (rest: string) => at(`tiers[${i}].${rest}`);
        if (t === null || typeof t !== 'object' || Array.isArray(t)) {
          push('invalid_price_model', at(`tiers[${i}]`), 'a tier must be an object');
          return;
        }
        const tier = t as Record<string, unknown>;
        for (const k of Object.keys(tier)) {
          if (!['up_to', 'unit_amount', 'flat_amount'].includes(k)) push('unknown_field', tp(k), `${k} is not a field of a tier`);
        }
        const last = i === tiers.length - 1;
        if (tier.up_to === null) {
          if (!last) push('open_tier_not_last', tp('up_to'), 'only the last tier may be open-ended (up_to null)');
        } else if (tier.up_to === undefined) {
          push('required', tp('up_to'), `up_to is required (null on the last tier)`);
        } else {
          const up = decimalField(tier.up_to, tp('up_to'), PRICE_SCALE, true);
          if (last) push('last_tier_not_open', tp('up_to'), 'the last tier must be open-ended (up_to null)');
          if (up && prev && !up.gt(prev)) {
            push('tier_not_ascending', tp('up_to'), `up_to must be greater than the previous tier's (${str(prev)})`);
          }
          if (up) prev = up;
        }
        decimalField(tier.unit_amount, tp('unit_amount'), PRICE_SCALE);
        if (tier.flat_amount !== undefined) decimalField(tier.flat_amount, tp('flat_amount'), PRICE_SCALE);
      });
      break;
    }
  }
  return issues;
}

/** Throws a RatingError carrying every issue when the price model is invalid. */
export function assertValidPriceModel(p: unknown, opts: ValidatePriceOptions = {}): asserts p is PriceModel {
  const issues = validatePriceModel(p, opts);
  if (issues.length) throw RatingError.fromIssues(issues);
}

export interface TierBreakdown {
  /** 1-based tier number, as a customer reads it ("tier 2"). */
  tier: number;
  /** Exclusive lower bound in units (0 for the first tier). */
  from: string;
  /** Inclusive upper bound, null for the open last tier. */
  to: string | null;
  /** Units priced in this tier (graduated: the part inside it; volume: the whole quantity). */
  quantity: string;
  unit_amount: string;
  flat_amount: string;
  /** Exact, unrounded: quantity × unit_amount + flat_amount. */
  amount: string;
}

export interface PriceResult {
  /** Exact, unrounded amount. */
  amount: Decimal;
  tiers?: TierBreakdown[];
  /** package model: packages charged. */
  packages?: Decimal;
  /** A single unit price when the model has one (per_unit; volume: the reached tier's). */
  unit_amount: Decimal | null;
  steps: Step[];
}

/** Internal: prices `quantity` into an existing step log; the last step is named `amountName`. */
export function priceInto(
  log: StepLog,
  model: PriceModel,
  quantity: Val,
  currency: Currency,
  amountName = 'amount_exact',
): { amount: Val; tiers?: TierBreakdown[]; packages?: Decimal; unit_amount: Decimal | null } {
  const q = quantity.value;
  if (q.isNegative() && !q.isZero()) throw new RatingError('negative_not_allowed', 'quantity must not be negative', 'quantity');
  const p = (d: string) => fmtPrice(dec(d), currency);
  switch (model.model) {
    case 'flat': {
      const amount = log.add('if_positive', { quantity, amount: model.amount }, `flat ${p(model.amount)} (charged when the quantity is above 0)`, amountName);
      return { amount, unit_amount: null };
    }
    case 'per_unit': {
      const amount = log.add(
        'product',
        { quantity, unit_amount: model.unit_amount },
        `${fmtQty(q)} × ${p(model.unit_amount)}`,
        amountName,
      );
      return { amount, unit_amount: dec(model.unit_amount) };
    }
    case 'package': {
      const packages = log.add(
        'ceil_div',
        { quantity, package_size: model.package_size },
        `${fmtQty(q)} units in packages of ${fmtQty(dec(model.package_size))}: every started package counts`,
        'packages',
      );
      const amount = log.add(
        'product',
        { packages, package_amount: model.package_amount },
        `${fmtQty(packages.value)} packages × ${p(model.package_amount)}`,
        amountName,
      );
      return { amount, packages: packages.value, unit_amount: null };
    }
    case 'graduated': {
      const tiers: TierBreakdown[] = [];
      const parts: Record<string, Val> = {};
      let from = ZERO;
      model.tiers.forEach((t, i) => {
        const n = i + 1;
        const to = t.up_to === null ? null : dec(t.up_to);
        if (!q.gt(from)) return; // not entered
        const tq = log.add(
          'tier_quantity',
          { quantity, from, to: t.up_to },
          `units in tier ${n} (${fmtQty(from)} < q ≤ ${to === null ? '∞' : fmtQty(to)})`,
          `tier_${n}_quantity`,
        );
        const flat = t.flat_amount ?? '0';
        const amt = log.add(
          'tier_amount',
          { quantity: tq, unit_amount: t.unit_amount, flat_amount: flat },
          `tier ${n}: ${fmtQty(tq.value)} × ${p(t.unit_amount)}${dec(flat).isZero() ? '' : ` + ${p(flat)} flat`}`,
          `tier_${n}_amount`,
        );
        parts[`tier_${n}_amount`] = amt;
        tiers.push({
          tier: n,
          from: str(from),
          to: t.up_to === null ? null : str(dec(t.up_to)),
          quantity: str(tq.value),
          unit_amount: t.unit_amount,
          flat_amount: flat,
          amount: str(amt.value),
        });
        if (to !== null) from = to;
      });
      const amount = log.add('sum', parts, 'graduated: sum of the tiers', amountName);
      return { amount, tiers, unit_amount: null };
    }
    case 'volume': {
      let from = ZERO;
      let idx = model.tiers.length - 1;
      for (let i = 0; i < model.tiers.length; i++) {
        const up = model.tiers[i].up_to;
        if (up === null || q.lte(dec(up))) {
          idx = i;
          break;
        }
        from = dec(up);
      }
      const t = model.tiers[idx];
      const flat = t.flat_amount ?? '0';
      const n = idx + 1;
      const amount = log.add(
        'tier_amount',
        { quantity, unit_amount: t.unit_amount, flat_amount: flat },
        `volume: ${fmtQty(q)} reaches tier ${n} (${fmtQty(from)} < q ≤ ${t.up_to === null ? '∞' : fmtQty(dec(t.up_to))}), which prices all units: ${fmtQty(q)} × ${p(t.unit_amount)}${dec(flat).isZero() ? '' : ` + ${p(flat)} flat`}`,
        amountName,
      );
      const tiers: TierBreakdown[] = [
        {
          tier: n,
          from: str(from),
          to: t.up_to === null ? null : str(dec(t.up_to)),
          quantity: str(q),
          unit_amount: t.unit_amount,
          flat_amount: flat,
          amount: str(amount.value),
        },
      ];
      return { amount, tiers, unit_amount: dec(t.unit_amount) };
    }
    default:
      throw new RatingError('unknown_model', `unknown price model ${show((model as { model?: unknown }).model)}`, 'model');
  }
}

/**
 * Prices `quantity` units with `model`. The amount is exact and unrounded (a line rounds once);
 * `steps` start with the quantity as an input and end with the step named `amount_exact`.
 * Quantity 0 prices to 0 under every model (no tier is entered, no flat amount is charged).
 */
export function priceQuantity(model: PriceModel, quantity: Decimal, currency: string | Currency): PriceResult {
  assertValidPriceModel(model, { field: 'price' });
  const cur = currencyOf(currency);
  const log = new StepLog();
  const q = log.add('input', { value: dec(quantity) }, 'quantity to price', 'quantity');
  const r = priceInto(log, model, q, cur);
  return {
    amount: r.amount.value,
    ...(r.tiers ? { tiers: r.tiers } : {}),
    ...(r.packages ? { packages: r.packages } : {}),
    unit_amount: r.unit_amount,
    steps: log.steps,
  };
}

/** A short customer-readable description of a price ("$0.005 per call", "graduated, 3 tiers"). */
export function describePrice(model: PriceModel, currency: string | Currency, unit = 'unit'): string {
  const cur = currencyOf(currency);
  const p = (d: string) => fmtPrice(dec(d), cur);
  switch (model.model) {
    case 'flat':
      return `${p(model.amount)} flat`;
    case 'per_unit':
      return `${p(model.unit_amount)} per ${unit}`;
    case 'package':
      return `${p(model.package_amount)} per ${fmtQty(dec(model.package_size))} ${unit}`;
    case 'graduated':
    case 'volume':
      return `${model.model}: ${model.tiers
        .map((t, i) => {
          const prev = i > 0 ? model.tiers[i - 1].up_to : null;
          const range = t.up_to !== null ? `up to ${fmtQty(dec(t.up_to))}` : prev !== null ? `above ${fmtQty(dec(prev))}` : 'any quantity';
          return `${range} ${p(t.unit_amount)}${t.flat_amount && !dec(t.flat_amount).isZero() ? ` + ${p(t.flat_amount)}` : ''}`;
        })
        .join(', ')}`;
  }
}

/**
 * "<head>: 15,000 × $0.005" and its equivalents for the other models, from a pricing result.
 * Used by usage, seat and add-on lines so every line reads the same way.
 */
export function describePriced(
  head: string,
  quantity: Decimal,
  unit: string,
  model: PriceModel,
  r: { tiers?: TierBreakdown[]; packages?: Decimal },
  currency: Currency,
): string {
  const q = fmtQty(quantity);
  const p = (d: string) => fmtPrice(dec(d), currency);
  switch (model.model) {
    case 'per_unit':
      return `${head}: ${q} × ${p(model.unit_amount)}`;
    case 'package':
      return `${head}: ${q} ${unit} = ${fmtQty(r.packages ?? ZERO)} packages of ${fmtQty(dec(model.package_size))} × ${p(model.package_amount)}`;
    case 'flat':
      return `${head}: ${q} ${unit}, flat ${p(model.amount)}`;
    case 'graduated':
      return `${head}: ${q} ${unit}, graduated (${(r.tiers ?? [])
        .map((t) => `${fmtQty(dec(t.quantity))} × ${p(t.unit_amount)}${dec(t.flat_amount).isZero() ? '' : ` + ${p(t.flat_amount)}`}`)
        .join(' + ')})`;
    case 'volume': {
      const t = (r.tiers ?? [])[0];
      return `${head}: ${q} × ${p(t.unit_amount)}${dec(t.flat_amount).isZero() ? '' : ` + ${p(t.flat_amount)}`} (volume tier ${t.tier})`;
    }
  }
}
