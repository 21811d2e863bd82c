/**
 * Flat fees of a subscription state: the plan's recurring fee(s), extra seats and add-ons, each a
 * "component" with its full-period fee. Billed in advance (SPEC §2), prorated by whole days.
 */
import { Currency, Decimal, dec } from '@closebook/money';
import { RatingError } from './errors';
import { LineType, RatedLine, finishLine } from './lines';
import { PlanInterval, SubscriptionState, stateSeats } from './plan';
import { assertValidPriceModel, describePriced, PriceModel, priceInto, TierBreakdown } from './price-models';
import { ProrationFactor, toProrationInfo } from './proration';
import { StepLog, Val } from './steps';
import { cmpStr, fmtPrice, iso, str, ZERO } from './util';

export type FeeType = 'base_fee' | 'seat' | 'addon';

export interface FeeComponent {
  /** `${type}:${product_key}` — how old and new components are matched in a transition. */
  component: string;
  type: FeeType;
  product_key: string;
  name: string;
  plan_name: string;
  interval: PlanInterval;
  price: PriceModel;
  /** Priced quantity: 1 (base fee), extra seats, add-on quantity. */
  quantity: Decimal;
  seats?: number;
  included_seats?: number;
  /** Full fee for one whole fee period, exact. */
  fee: Decimal;
  unit_amount: Decimal | null;
  tiers: TierBreakdown[] | null;
  /** Customer-readable: "Pro plan", "Seats over 3 included: 9 × $15.00". */
  description: string;
}

/**
 * Records a component's full fee into `log` (names prefixed by `prefix`), ending in `${prefix}fee`.
 */
export function componentSteps(c: FeeComponent, currency: Currency, log: StepLog, prefix = ''): Val {
  const n = (s: string) => `${prefix}${s}`;
  let q: Val;
  if (c.type === 'seat') {
    const seats = log.add('input', { value: String(c.seats ?? 0) }, `${c.plan_name}: seats`, n('seats'));
    const inc = log.add('input', { value: String(c.included_seats ?? 0) }, 'seats included in the plan', n('included_seats'));
    const diff = log.add('difference', { minuend: seats, subtrahend: inc }, 'seats beyond the included ones', n('extra_seats'));
    q = log.add('max', { extra_seats: diff, zero: '0' }, 'never negative', n('billable_seats'));
  } else {
    q = log.add('input', { value: c.quantity }, c.type === 'base_fee' ? `${c.plan_name} fee` : `${c.name}: quantity`, n('quantity'));
  }
  const saved = prefixNames(log, prefix, () => priceInto(log, c.price, q, currency, 'fee'));
  return saved.amount;
}

/** Runs `fn` with every step name it records prefixed (so several components share one log). */
function prefixNames<T>(log: StepLog, prefix: string, fn: () => T): T {
  if (!prefix) return fn();
  const before = log.steps.length;
  const out = fn();
  const renamed = new Map<string, string>();
  for (let i = before; i < log.steps.length; i++) {
    const s = log.steps[i];
    if (s.refs) for (const [k, v] of Object.entries(s.refs)) if (renamed.has(v)) s.refs[k] = renamed.get(v) as string;
    if (s.name) {
      renamed.set(s.name, `${prefix}${s.name}`);
      s.name = `${prefix}${s.name}`;
    }
  }
  const o = out as unknown as { amount?: Val };
  if (o && o.amount && o.amount.name && renamed.has(o.amount.name)) o.amount = { ...o.amount, name: renamed.get(o.amount.name) };
  return out;
}

/** The flat-fee components of a state, in a stable order: recurring (plan order), seats, add-ons (by key). */
export function feeComponents(state: SubscriptionState, currency: Currency): FeeComponent[] {
  const plan = state.plan;
  const out: FeeComponent[] = [];
  const seats = stateSeats(state);
  const build = (
    type: FeeType,
    product_key: string,
    name: string,
    price: PriceModel,
    quantity: Decimal,
    extra: Partial<FeeComponent> = {},
  ): FeeComponent => {
    assertValidPriceModel(price, { field: `plan.products.${product_key}.price` });
    const base: FeeComponent = {
      component: `${type}:${product_key}`,
      type,
      product_key,
      name,
      plan_name: plan.name,
      interval: plan.interval,
      price,
      quantity,
      fee: ZERO,
      unit_amount: null,
      tiers: null,
      description: name,
      ...extra,
    };
    const log = new StepLog();
    const fee = componentSteps(base, currency, log);
    const r = priceInto(new StepLog(), price, { value: quantity }, currency, 'fee');
    base.fee = fee.value;
    base.unit_amount = price.model === 'per_unit' ? dec(price.unit_amount) : null;
    base.tiers = r.tiers ?? null;
    if (type === 'base_fee') base.description = name;
    else if (type === 'seat') {
      const head = (base.included_seats ?? 0) > 0 ? `Seats over ${base.included_seats} included` : 'Seats';
      base.description = describePriced(head, quantity, 'seats', price, r, currency);
    } else {
      base.description =
        price.model === 'flat' ? name : describePriced(name, quantity, 'units', price, r, currency);
    }
    return base;
  };

  for (const p of plan.products) {
    if (p.kind === 'recurring') out.push(build('base_fee', p.product_key, p.name, p.price, dec(1)));
  }
  for (const p of plan.products) {
    if (p.kind === 'seat') {
      const included = p.included_seats ?? 0;
      out.push(build('seat', p.product_key, p.name, p.price, dec(Math.max(0, seats - included)), { seats, included_seats: included }));
    }
  }
  const addons = [...(state.addons ?? [])].sort((a, b) => cmpStr(a.product_key, b.product_key));
  addons.forEach((a, i) => {
    if (i > 0 && addons[i - 1].product_key === a.product_key) {
      throw new RatingError('duplicate_addon', `add-on ${a.product_key} is listed twice`, 'addons');
    }
    const q = a.quantity ?? 1;
    if (!Number.isSafeInteger(q) || q < 0) throw new RatingError('invalid_count', 'add-on quantity must be a non-negative integer', `addons.${a.product_key}.quantity`);
    const inPlan = plan.products.find((p) => p.kind === 'addon' && p.product_key === a.product_key);
    const price = inPlan?.price ?? a.price;
    if (!price) throw new RatingError('addon_price_missing', `add-on ${a.product_key} has no price in the plan version or the subscription`, `addons.${a.product_key}`);
    out.push(build('addon', a.product_key, inPlan?.name ?? a.name ?? a.product_key, price, dec(q)));
  });
  return out;
}

/** Σ fees of base_fee components (a plan "is free" when this is 0). */
export function baseFee(components: readonly FeeComponent[]): Decimal {
  return components.filter((c) => c.type === 'base_fee').reduce((a, c) => a.plus(c.fee), ZERO);
}

/** Monthly-equivalent total of all flat fees (yearly ÷ 12). */
export function monthlyEquivalent(components: readonly FeeComponent[]): Decimal {
  return components.reduce((a, c) => a.plus(c.interval === 'year' ? c.fee.div(12) : c.fee), ZERO);
}

function intervalWord(c: FeeComponent): string {
  return c.interval === 'year' ? 'yearly' : 'monthly';
}

export interface FeeSpan {
  start: number;
  end: number;
  /** Present when the span is a prorated part of its fee period. */
  proration?: ProrationFactor;
  /** The full fee period the proration is taken of. */
  full?: { start: number; end: number };
}

/** A fee line for a span (the regular in-advance line, prorated when the span is partial). */
export function feeLine(c: FeeComponent, currency: Currency, span: FeeSpan, lineType: LineType = c.type): RatedLine {
  const log = new StepLog();
  const fee = componentSteps(c, currency, log);
  let exact: Val = fee;
  let desc = `${c.description} (${intervalWord(c)})`;
  if (span.proration && span.full && span.proration.daysRemaining !== span.proration.daysInPeriod) {
    exact = log.add(
      'prorate',
      { amount: fee, days: String(span.proration.daysRemaining), days_in_period: String(span.proration.daysInPeriod) },
      `prorated ${span.proration.label}`,
      'amount_exact',
    );
    desc = `${c.description} (${intervalWord(c)}, prorated ${span.proration.label})`;
  }
  const prorated = !!(span.proration && span.full && span.proration.daysRemaining !== span.proration.daysInPeriod);
  return finishLine(log, exact, currency, {
    line_key: `${lineType}:${c.product_key}:${iso(span.start)}`,
    type: lineType,
    product_key: c.product_key,
    period_start: iso(span.start),
    period_end: iso(span.end),
    quantity: str(c.quantity),
    unit_amount: c.unit_amount ? str(c.unit_amount) : c.type === 'base_fee' ? str(c.fee) : null,
    tiers: c.tiers,
    price: c.price,
    description: desc,
    proration: prorated && span.proration && span.full ? toProrationInfo(span.proration, iso(span.full.start), iso(span.full.end)) : null,
    meta: { component: c.component, plan: c.plan_name, interval: c.interval },
  });
}

/** proration_credit (unused old fee × factor, negative) or proration_charge (new fee × factor, or the full fee). */
export function prorationLine(
  kind: 'credit' | 'charge' | 'full_charge',
  c: FeeComponent,
  currency: Currency,
  f: ProrationFactor,
  full: { start: number; end: number },
  keySuffix: string,
): RatedLine {
  const log = new StepLog();
  const fee = componentSteps(c, currency, log);
  let exact: Val;
  let desc: string;
  if (kind === 'full_charge') {
    exact = fee;
    desc = `${c.description} (${intervalWord(c)}, full fee from ${f.from.slice(0, 10)})`;
  } else {
    const part = log.add(
      'prorate',
      { amount: fee, days: String(f.daysRemaining), days_in_period: String(f.daysInPeriod) },
      `${kind === 'credit' ? 'unused' : 'remaining'} ${f.label}`,
      kind === 'credit' ? 'unused_fee' : 'amount_exact',
    );
    exact = kind === 'credit' ? log.add('negate', { value: part }, 'credited', 'amount_exact') : part;
    desc = `${kind === 'credit' ? 'Unused time on' : 'Remaining time on'} ${c.description} (${intervalWord(c)}, ${f.label})`;
  }
  const type: LineType = kind === 'credit' ? 'proration_credit' : 'proration_charge';
  return finishLine(log, exact, currency, {
    line_key: `${type}:${c.component}:${keySuffix}`,
    type,
    product_key: c.product_key,
    period_start: f.from,
    period_end: f.to,
    quantity: str(c.quantity),
    unit_amount: c.unit_amount ? str(c.unit_amount) : c.type === 'base_fee' ? str(c.fee) : null,
    tiers: c.tiers,
    price: c.price,
    description: desc,
    proration: kind === 'full_charge' ? null : toProrationInfo(f, iso(full.start), iso(full.end)),
    meta: { component: c.component, plan: c.plan_name, interval: c.interval },
  });
}

/** difference_immediately: Σ new fees − Σ old fees of the changed components, unprorated. */
export function differenceLine(
  olds: readonly FeeComponent[],
  news: readonly FeeComponent[],
  currency: Currency,
  span: { start: number; end: number },
  fromName: string,
  toName: string,
  keySuffix: string,
): RatedLine | null {
  const log = new StepLog();
  const newVals: Record<string, Val> = {};
  const oldVals: Record<string, Val> = {};
  news.forEach((c, i) => (newVals[`new_${i + 1}_fee`] = componentSteps(c, currency, log, `new_${i + 1}_`)));
  olds.forEach((c, i) => (oldVals[`old_${i + 1}_fee`] = componentSteps(c, currency, log, `old_${i + 1}_`)));
  const n = log.add('sum', newVals, `new fees (${toName})`, 'new_fees');
  const o = log.add('sum', oldVals, `old fees (${fromName})`, 'old_fees');
  const diff = log.add('difference', { minuend: n, subtrahend: o }, 'difference, unprorated', 'amount_exact');
  if (diff.value.isZero()) return null;
  const type: LineType = diff.value.isNegative() ? 'proration_credit' : 'proration_charge';
  return finishLine(log, diff, currency, {
    line_key: `${type}:difference:${keySuffix}`,
    type,
    product_key: null,
    period_start: iso(span.start),
    period_end: iso(span.end),
    quantity: '1',
    unit_amount: str(diff.value),
    description: `Change from ${fromName} to ${toName}: ${fmtPrice(n.value, currency)} − ${fmtPrice(o.value, currency)}${
      diff.value.isNegative() ? ' (credit)' : ''
    }`,
    meta: { strategy: 'difference_immediately', new_fees: str(n.value), old_fees: str(o.value) },
  });
}
