/**
 * Whole invoices for a subscription (SPEC §2, §4): the opening invoice (first period's flat fees),
 * the period invoice (P's usage in arrears + P+1's flat fees in advance + deferred proration lines,
 * on-demand charges, adjustments, credits) and plan/seat/add-on transitions inside a period.
 */
import { Currency, dec, Money } from '@closebook/money';
import {
  AllowanceGrant,
  AllowanceSegmentInput,
  cycleAllowance,
  liveGrants,
  periodAllowance,
  periodGrant,
  TransitionKind,
} from './allowance';
import {
  assertAnchorDay,
  BillingPeriod,
  DEFAULT_ANCHOR_DAY,
  feeYearContaining,
  firstPeriod,
  nextPeriod,
  periodContaining,
} from './billing-periods';
import { RatingError } from './errors';
import { baseFee, differenceLine, FeeComponent, feeComponents, FeeSpan, feeLine, monthlyEquivalent, prorationLine } from './fees';
import { finishLine, RatedLine, TaxLine, totals } from './lines';
import {
  DEFAULT_PRORATION_STRATEGY,
  findMetered,
  keyTerms,
  MeteredPlanProduct,
  planCurrency,
  PRORATION_STRATEGIES,
  ProrationStrategy,
  RatingPlanVersion,
  stateSeats,
  SubscriptionState,
} from './plan';
import { assertPeriod, ProrationFactor, spanFactor } from './proration';
import { AllowanceState, rateUsage } from './rate-usage';
import { GrantExpiry, rollover } from './rollover';
import { Step, StepLog } from './steps';
import { cmpStr, fmtPrice, fmtQty, Instant, iso, parseNonNegative, parseSigned, PRICE_SCALE, startOfUtcDay, str, toMs, DAY_MS } from './util';

export type InvoiceKind = 'opening' | 'period' | 'transition';

export interface RatedInvoice {
  kind: InvoiceKind;
  subscription_id: string;
  currency: string;
  /** The invoice's own period (period invoice: P; opening: the first period; transition: the cycle). */
  period_start: string;
  period_end: string;
  lines: RatedLine[];
  subtotal: string;
  tax: TaxLine | null;
  total: string;
}

export interface OnDemandCharge {
  charge_id: string;
  description: string;
  quantity: string;
  unit_amount: string;
  /** When the service was delivered; the line's service period is that UTC day. */
  date: Instant;
  product_key?: string;
}

export interface AdjustmentInput {
  adjustment_id: string;
  description: string;
  /** Signed exact amount (e.g. late usage's would-have-billed amount). */
  amount: string;
  /** The original service period the adjustment corrects. */
  period_start: Instant;
  period_end: Instant;
  product_key?: string;
  quantity?: string;
  /** The steps that computed `amount` (kept in front for explanations). */
  steps?: Step[];
}

export interface CreditInput {
  credit_id: string;
  description: string;
  /** Positive amount credited; the line carries it negated. */
  amount: string;
  period_start?: Instant;
  period_end?: Instant;
}

/** Usage of one dimension (and price key) in the period: the rollup aggregate. */
export interface UsageQuantity {
  product_key: string;
  price_key?: string | null;
  quantity: string;
}

/** A subscription state in force from `from` (applies from the start of that UTC day). */
export interface StateSegment extends SubscriptionState {
  from: Instant;
  /** How this state was entered; default: classified from the fees (see classifyTransition). */
  transition?: TransitionKind | null;
}

function resolveAnchor(a: number | undefined): number {
  return assertAnchorDay(a ?? DEFAULT_ANCHOR_DAY, 'anchor_day');
}

// ---------------------------------------------------------------------------------------------
// Transitions: classification

/** Compares monthly-equivalent flat fees (yearly ÷ 12): up = upgrade, down = downgrade, equal = lateral. */
export function classifyTransition(from: SubscriptionState, to: SubscriptionState): TransitionKind {
  const cur = planCurrency([from, to]);
  const a = monthlyEquivalent(feeComponents(from, cur));
  const b = monthlyEquivalent(feeComponents(to, cur));
  return b.gt(a) ? 'upgrade' : b.lt(a) ? 'downgrade' : 'lateral';
}

/** A move from a plan whose flat fee is 0 to a paid one (SPEC §2: subscription.converted). */
export function isConversion(from: SubscriptionState, to: SubscriptionState): boolean {
  const cur = planCurrency([from, to]);
  return baseFee(feeComponents(from, cur)).isZero() && baseFee(feeComponents(to, cur)).gt(0);
}

// ---------------------------------------------------------------------------------------------
// Other line kinds

function onDemandLine(c: OnDemandCharge, i: number, cur: Currency): RatedLine {
  const f = `on_demand[${i}]`;
  if (typeof c.charge_id !== 'string' || !c.charge_id) throw new RatingError('required', 'charge_id is required', `${f}.charge_id`);
  const q = parseNonNegative(c.quantity, `${f}.quantity`);
  const u = parseNonNegative(c.unit_amount, `${f}.unit_amount`, PRICE_SCALE);
  const day = startOfUtcDay(toMs(c.date, `${f}.date`));
  const log = new StepLog();
  const qv = log.add('input', { value: q }, `${c.description}: quantity`, 'quantity');
  const exact = log.add('product', { quantity: qv, unit_amount: u }, `${fmtQty(q)} × ${fmtPrice(u, cur)}`, 'amount_exact');
  return finishLine(log, exact, cur, {
    line_key: `on_demand:${c.charge_id}`,
    type: 'on_demand',
    product_key: c.product_key ?? null,
    period_start: iso(day),
    period_end: iso(day + DAY_MS),
    quantity: str(q),
    unit_amount: str(u),
    description: `${c.description} (${iso(day).slice(0, 10)}): ${fmtQty(q)} × ${fmtPrice(u, cur)}`,
    meta: { charge_id: c.charge_id, date: iso(toMs(c.date)) },
  });
}

function adjustmentLine(a: AdjustmentInput, i: number, cur: Currency): RatedLine {
  const f = `adjustments[${i}]`;
  if (typeof a.adjustment_id !== 'string' || !a.adjustment_id) throw new RatingError('required', 'adjustment_id is required', `${f}.adjustment_id`);
  const amount = parseSigned(a.amount, `${f}.amount`);
  const s = toMs(a.period_start, `${f}.period_start`);
  const e = toMs(a.period_end, `${f}.period_end`);
  const log = new StepLog();
  if (a.steps?.length) log.append(a.steps);
  const exact = log.add('input', { value: amount }, `adjustment: ${a.description}`, 'amount_exact');
  return finishLine(log, exact, cur, {
    line_key: `adjustment:${a.adjustment_id}`,
    type: 'adjustment',
    product_key: a.product_key ?? null,
    period_start: iso(s),
    period_end: iso(e),
    quantity: a.quantity !== undefined ? str(parseNonNegative(a.quantity, `${f}.quantity`)) : '1',
    unit_amount: null,
    description: `${a.description} (service period ${iso(s).slice(0, 10)} – ${iso(e - 1).slice(0, 10)})`,
    meta: { adjustment_id: a.adjustment_id },
  });
}

function creditLine(c: CreditInput, i: number, cur: Currency, period: BillingPeriod): RatedLine {
  const f = `credits[${i}]`;
  if (typeof c.credit_id !== 'string' || !c.credit_id) throw new RatingError('required', 'credit_id is required', `${f}.credit_id`);
  const amount = parseNonNegative(c.amount, `${f}.amount`);
  const log = new StepLog();
  const v = log.add('input', { value: amount }, c.description, 'credit');
  const exact = log.add('negate', { value: v }, 'credited', 'amount_exact');
  return finishLine(log, exact, cur, {
    line_key: `credit:${c.credit_id}`,
    type: 'credit',
    period_start: iso(toMs(c.period_start ?? period.start, `${f}.period_start`)),
    period_end: iso(toMs(c.period_end ?? period.end, `${f}.period_end`)),
    quantity: '1',
    unit_amount: null,
    description: c.description,
    meta: { credit_id: c.credit_id },
  });
}

function extraLines(
  cur: Currency,
  period: BillingPeriod,
  input: { on_demand?: OnDemandCharge[]; adjustments?: AdjustmentInput[]; credits?: CreditInput[] },
): RatedLine[] {
  const od = [...(input.on_demand ?? [])]
    .map((c, i) => ({ c, i, t: toMs(c.date, `on_demand[${i}].date`) }))
    .sort((a, b) => a.t - b.t || cmpStr(a.c.charge_id, b.c.charge_id));
  const adj = (input.adjustments ?? []).map((a, i) => ({ a, i })).sort((x, y) => cmpStr(x.a.adjustment_id, y.a.adjustment_id));
  const cr = (input.credits ?? []).map((c, i) => ({ c, i })).sort((x, y) => cmpStr(x.c.credit_id, y.c.credit_id));
  return [
    ...od.map(({ c, i }) => onDemandLine(c, i, cur)),
    ...adj.map(({ a, i }) => adjustmentLine(a, i, cur)),
    ...cr.map(({ c, i }) => creditLine(c, i, cur, period)),
  ];
}

function invoice(kind: InvoiceKind, subscriptionId: string, cur: Currency, period: BillingPeriod, lines: RatedLine[], taxRate?: string | null): RatedInvoice {
  const t = totals(lines, cur, taxRate);
  return {
    kind,
    subscription_id: subscriptionId,
    currency: cur.code,
    period_start: period.start,
    period_end: period.end,
    lines,
    subtotal: t.subtotal,
    tax: t.tax,
    total: t.total,
  };
}

function includeFeeLine(c: FeeComponent): boolean {
  return c.type === 'base_fee' || c.quantity.gt(0);
}

// ---------------------------------------------------------------------------------------------
// Opening invoice

export interface OpeningInvoiceInput {
  subscription_id: string;
  subscription_start: Instant;
  anchor_day?: number;
  state: SubscriptionState;
  on_demand?: OnDemandCharge[];
  credits?: CreditInput[];
  tax_rate?: string | null;
}

/**
 * The first invoice: the first period's flat fees in advance, prorated when the subscription starts
 * mid-cycle (a yearly plan: its first fee year, prorated when it starts mid-cycle).
 */
export function rateOpeningInvoice(input: OpeningInvoiceInput): RatedInvoice {
  const anchor = resolveAnchor(input.anchor_day);
  const cur = planCurrency([input.state]);
  const fp = firstPeriod(input.subscription_start, anchor);
  const lines: RatedLine[] = [];
  for (const c of feeComponents(input.state, cur)) {
    if (!includeFeeLine(c)) continue;
    let span: FeeSpan;
    if (c.interval === 'year') {
      const fy = feeYearContaining(input.subscription_start, anchor, fp.period.start);
      span = { start: toMs(fy.period.start), end: toMs(fy.period.end), proration: fy.proration, full: { start: toMs(fy.full.start), end: toMs(fy.full.end) } };
    } else {
      span = { start: toMs(fp.period.start), end: toMs(fp.period.end), proration: fp.proration, full: { start: toMs(fp.cycle.start), end: toMs(fp.cycle.end) } };
    }
    lines.push(feeLine(c, cur, span));
  }
  lines.push(...extraLines(cur, fp.period, input));
  return invoice('opening', input.subscription_id, cur, fp.period, lines, input.tax_rate);
}

// ---------------------------------------------------------------------------------------------
// Period invoice

export interface PeriodInvoiceInput {
  subscription_id: string;
  subscription_start: Instant;
  anchor_day?: number;
  /** P: a usage cycle of the subscription (the first one may be partial). */
  period: BillingPeriod;
  /** States in force during P, sorted by `from`; the first is in force at P's start. */
  segments: StateSegment[];
  /** Default true: P+1's flat fees are billed in advance on this invoice. */
  renews?: boolean;
  /** State in force at the start of P+1 (a scheduled downgrade); default: the last segment's. */
  next?: SubscriptionState;
  usage?: UsageQuantity[];
  /** Grants carried into P (rollover), with drawn_before; P's own period grants are made here. */
  grants?: AllowanceGrant[];
  on_demand?: OnDemandCharge[];
  adjustments?: AdjustmentInput[];
  credits?: CreditInput[];
  /** Lines deferred by earlier transitions (prorated_next_invoice, difference credits). */
  deferred_lines?: RatedLine[];
  tax_rate?: string | null;
}

export interface DrawdownRecord {
  period: string;
  grant_id: string;
  product_key: string;
  price_key: string | null;
  drawn: string;
}

export interface RolloverRecord {
  product_key: string;
  price_key: string | null;
  carried: string;
  cap: string;
  grant: AllowanceGrant | null;
  steps: Step[];
}

export interface PeriodInvoice extends RatedInvoice {
  kind: 'period';
  allowance: AllowanceState[];
  /** Σ rounded overage lines. */
  overage_total: string;
  allowance_ledger: {
    /** New grants: P's period grants and the rollover grants carried out of P. */
    grants: AllowanceGrant[];
    drawdowns: DrawdownRecord[];
    expiries: GrantExpiry[];
    rollovers: RolloverRecord[];
    /** Grants live in P+1 (drawn_before updated), for the next rating. */
    carried_forward: AllowanceGrant[];
  };
}

interface NormSegment {
  state: StateSegment;
  from: number;
  transition: TransitionKind | null;
}

function normaliseSegments(segments: readonly StateSegment[], ps: number, pe: number): NormSegment[] {
  if (!Array.isArray(segments) || segments.length === 0) throw new RatingError('segments_empty', 'at least one segment is required', 'segments');
  const all: NormSegment[] = [];
  segments.forEach((s, i) => {
    const from = startOfUtcDay(toMs(s.from, `segments[${i}].from`));
    if (i === 0 && from > ps) throw new RatingError('segments_gap', 'the first segment must be in force at the period start', 'segments[0].from');
    if (i > 0 && from < all[i - 1].from) throw new RatingError('segments_not_sorted', 'segments must be sorted by from', `segments[${i}].from`);
    if (i > 0 && from >= pe) throw new RatingError('segment_outside_period', 'a segment starts after the period ends', `segments[${i}].from`);
    const transition = i === 0 ? null : s.transition ?? classifyTransition(segments[i - 1], s);
    all.push({ state: s, from, transition });
  });
  // Only the last state that began before the period and the changes from its first day on matter
  // (a change on the first day keeps its predecessor as a 0-day segment, for the upgrade floor).
  let first = 0;
  all.forEach((s, i) => {
    if (s.from < ps) first = i;
  });
  const out = all.slice(first);
  out[0] = { ...out[0], transition: null };
  return out;
}

interface Dimension {
  product: MeteredPlanProduct;
  keys: (string | null)[];
}

function dimensions(segs: readonly NormSegment[], usage: readonly UsageQuantity[]): Dimension[] {
  // Products of the plan in force at period end first, then any only earlier segments had.
  const order: MeteredPlanProduct[] = [];
  const seen = new Set<string>();
  for (let i = segs.length - 1; i >= 0; i--) {
    for (const p of segs[i].state.plan.products) {
      if (p.kind === 'metered' && !seen.has(p.product_key)) {
        seen.add(p.product_key);
        order.push(p);
      }
    }
  }
  const endKeys = new Set(segs[segs.length - 1].state.plan.products.filter((p) => p.kind === 'metered').map((p) => p.product_key));
  order.sort((a, b) => (endKeys.has(a.product_key) === endKeys.has(b.product_key) ? 0 : endKeys.has(a.product_key) ? -1 : 1));
  usage.forEach((u, i) => {
    if (!seen.has(u.product_key)) throw new RatingError('unpriced_usage', `no plan in force during the period prices ${u.product_key}`, `usage[${i}].product_key`);
  });
  return order.map((product) => {
    if (!product.keyed_prices) return { product, keys: [null] };
    const ks = new Set<string>(product.keyed_prices.map((k) => k.key).filter((k) => k !== '*'));
    usage.forEach((u, i) => {
      if (u.product_key !== product.product_key) return;
      if (u.price_key === null || u.price_key === undefined) {
        throw new RatingError('price_key_required', `${product.product_key} is priced by ${product.price_key_label}; usage needs a price_key`, `usage[${i}].price_key`);
      }
      ks.add(u.price_key);
    });
    return { product, keys: [...ks].sort(cmpStr) };
  });
}

/**
 * The period invoice for P: P's usage (in arrears) at the prices of the plan in force at P's end,
 * drawing on a prorata allowance across P's segments, plus P+1's flat fees (in advance), deferred
 * proration lines, on-demand charges, adjustments and credits; tax on the subtotal.
 */
export function ratePeriodInvoice(input: PeriodInvoiceInput): PeriodInvoice {
  const anchor = resolveAnchor(input.anchor_day);
  const ps = toMs(input.period.start, 'period.start');
  const pe = toMs(input.period.end, 'period.end');
  assertPeriod(ps, pe);
  const period: BillingPeriod = { start: iso(ps), end: iso(pe) };
  const cycle = periodContaining(anchor, period.start);
  const subDay = startOfUtcDay(toMs(input.subscription_start, 'subscription_start'));
  if (toMs(cycle.end) < pe || (ps !== toMs(cycle.start) && ps !== subDay)) {
    throw new RatingError('period_not_a_cycle', 'period must be a monthly cycle of the anchor (or the partial first one)', 'period');
  }
  if ((input.renews ?? true) && pe !== toMs(cycle.end)) {
    throw new RatingError('period_not_a_cycle', 'a period ending mid-cycle (cancellation) cannot renew: set renews to false', 'period.end');
  }
  const segs = normaliseSegments(input.segments, ps, pe);
  const cur = planCurrency([...input.segments, ...(input.next ? [input.next] : [])]);
  const end = segs[segs.length - 1];
  const usage = input.usage ?? [];
  usage.forEach((u, i) => parseNonNegative(u.quantity, `usage[${i}].quantity`));
  const consumed = new Set<number>();

  const lines: RatedLine[] = [];

  // 1. P+1's flat fees, in advance.
  if (input.renews ?? true) {
    const next = nextPeriod(period, anchor);
    const ns = toMs(next.start);
    const state = input.next ?? end.state;
    for (const c of feeComponents(state, cur)) {
      if (!includeFeeLine(c)) continue;
      if (c.interval === 'month') {
        lines.push(feeLine(c, cur, { start: ns, end: toMs(next.end) }));
        continue;
      }
      const fy = feeYearContaining(input.subscription_start, anchor, next.start);
      const fs = toMs(fy.full.start);
      const fe = toMs(fy.full.end);
      if (toMs(fy.period.start) === ns) {
        lines.push(feeLine(c, cur, { start: ns, end: fe }));
      } else if (end.state.plan.interval === 'month') {
        // Switching from a monthly to a yearly plan at a cycle boundary inside a fee year: the
        // yearly fee is billed for the rest of that fee year, prorated.
        lines.push(feeLine(c, cur, { start: ns, end: fe, proration: spanFactor(ns, fe, fs, fe), full: { start: fs, end: fe } }));
      }
    }
  }

  // 2. P's usage, in arrears.
  const allowance: AllowanceState[] = [];
  const newGrants: AllowanceGrant[] = [];
  const drawdowns: DrawdownRecord[] = [];
  const expiries: GrantExpiry[] = [];
  const rollovers: RolloverRecord[] = [];
  const carried: AllowanceGrant[] = [];
  let overageTotal = Money.zero(cur);
  const inputGrants = input.grants ?? [];
  const usedGrantIds = new Set<string>();

  for (const dim of dimensions(segs, usage)) {
    const pk = dim.product.product_key;
    // Prices and overage mode: the plan in force at period end (or the last one that had the product).
    const priceSeg = [...segs].reverse().find((s) => findMetered(s.state.plan, pk)) as NormSegment;
    const product = findMetered(priceSeg.state.plan, pk) as MeteredPlanProduct;
    for (const key of dim.keys) {
      const terms = keyTerms(product, key);
      if (!terms) {
        throw new RatingError('unpriced_usage', `${pk} has no price for ${product.price_key_label ?? 'key'} ${String(key)}`, 'usage');
      }
      const aSegs: AllowanceSegmentInput[] = segs.map((s) => {
        const p = findMetered(s.state.plan, pk);
        const t = p ? keyTerms(p, key) : null;
        return {
          from: iso(s.from),
          allowance: t?.allowance ?? '0',
          allowance_basis: p?.allowance_basis ?? 'fixed',
          ...(s.state.plan.allowance_multiplier !== undefined ? { allowance_multiplier: s.state.plan.allowance_multiplier } : {}),
          seats: stateSeats(s.state),
          transition: s.transition,
          label: `${s.state.plan.name} v${s.state.plan.version}${p?.allowance_basis === 'per_seat' ? `, ${stateSeats(s.state)} seats` : ''}`,
        };
      });
      const pa = periodAllowance({ cycle, period, segments: aSegs });
      const grantId = `${input.subscription_id}:${pk}:${key ?? '-'}:${period.start}`;
      const own = pa.included.gt(0) ? periodGrant({ grant_id: grantId, period, quantity: pa.included, product_key: pk, price_key: key }) : null;
      const carriedIn = liveGrants(
        inputGrants.filter((g) => g.product_key === pk && (g.price_key ?? null) === key),
        period.start,
      );
      carriedIn.forEach((g) => usedGrantIds.add(g.grant_id));
      const grants = [...(own ? [own] : []), ...carriedIn];
      let qty = dec(0);
      usage.forEach((u, i) => {
        if (u.product_key !== pk || (u.price_key ?? null) !== key) return;
        consumed.add(i);
        qty = qty.plus(dec(u.quantity));
      });
      const rated = rateUsage({
        product_key: pk,
        product_name: product.name,
        unit: product.unit,
        price_key_label: product.price_key_label ?? null,
        period,
        currency: cur.code,
        overage: product.overage ?? 'bill',
        keys: [{ key, quantity: str(qty), price: terms.price, grants, allowance_steps: pa.steps, period_grant_id: grantId }],
      });
      lines.push(...rated.lines);
      allowance.push(...rated.states);
      overageTotal = overageTotal.plus(Money.parse(rated.billable_usage.amount, cur));
      if (own) newGrants.push(own);
      const draws = rated.keys[0].drawdown.draws;
      for (const d of draws) {
        if (dec(d.drawn).gt(0)) drawdowns.push({ period: period.start, grant_id: d.grant_id, product_key: pk, price_key: key, drawn: d.drawn });
      }
      if (grants.length) {
        const endProduct = findMetered(end.state.plan, pk);
        const endTerms = endProduct ? keyTerms(endProduct, key) : null;
        const enabled = endProduct ? endProduct.rollover_enabled ?? end.state.plan.allowance_rollover_default ?? false : false;
        const one = endTerms
          ? cycleAllowance(
              {
                allowance: endTerms.allowance,
                allowance_basis: endProduct?.allowance_basis,
                ...(end.state.plan.allowance_multiplier !== undefined ? { allowance_multiplier: end.state.plan.allowance_multiplier } : {}),
              },
              stateSeats(end.state),
            )
          : dec(0);
        const ro = rollover({
          period,
          anchor_day: anchor,
          grants,
          drawdown: { draws },
          config: {
            enabled,
            cap: endProduct?.rollover_cap ?? null,
            ...(endProduct?.rollover_expiry_periods !== undefined ? { expiry_periods: endProduct.rollover_expiry_periods } : {}),
          },
          one_allowance: str(one),
        });
        expiries.push(...ro.expiries);
        carried.push(...ro.continuing);
        if (ro.grant) newGrants.push(ro.grant);
        if (enabled) rollovers.push({ product_key: pk, price_key: key, carried: str(ro.carried), cap: str(ro.cap), grant: ro.grant, steps: ro.steps });
      }
    }
  }
  usage.forEach((u, i) => {
    if (!consumed.has(i)) {
      throw new RatingError('unpriced_usage', `usage of ${u.product_key} with price key ${String(u.price_key)} matches no price`, `usage[${i}].price_key`);
    }
  });
  // Carried-in grants of dimensions the plan no longer has still lapse on schedule.
  const orphans = liveGrants(inputGrants, period.start).filter((g) => !usedGrantIds.has(g.grant_id));
  if (orphans.length) {
    const ro = rollover({ period, anchor_day: anchor, grants: orphans, drawdown: { draws: [] }, config: { enabled: false }, one_allowance: '0' });
    expiries.push(...ro.expiries);
    carried.push(...ro.continuing);
  }

  // 3. Deferred proration lines, on-demand charges, adjustments, credits.
  for (const d of input.deferred_lines ?? []) {
    if (d.currency !== cur.code) throw new RatingError('currency_mismatch', `deferred line ${d.line_key} is in ${d.currency}`, 'deferred_lines');
    lines.push(d);
  }
  lines.push(...extraLines(cur, period, input));

  const inv = invoice('period', input.subscription_id, cur, period, lines, input.tax_rate);
  return {
    ...inv,
    kind: 'period',
    allowance,
    overage_total: overageTotal.format(),
    allowance_ledger: {
      grants: newGrants,
      drawdowns,
      expiries,
      rollovers,
      carried_forward: [...carried].sort((a, b) => cmpStr(a.grant_id, b.grant_id)),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Transitions

export interface TransitionInput {
  subscription_id: string;
  subscription_start: Instant;
  anchor_day?: number;
  effective_at: Instant;
  from: SubscriptionState;
  to: SubscriptionState;
  /** Explicitly requested; else the current plan's, else the organization's, else prorated_immediately. */
  strategy?: ProrationStrategy;
  organization_strategy?: ProrationStrategy;
  tax_rate?: string | null;
}

export interface TransitionResult {
  /** The strategy requested/resolved. */
  strategy: ProrationStrategy;
  /** The strategy actually applied (difference_immediately falls back across intervals). */
  applied_strategy: ProrationStrategy;
  direction: TransitionKind;
  conversion: boolean;
  /** The monthly cycle containing the effective day. */
  period: BillingPeriod;
  /** Remaining share of that cycle from the effective day. */
  proration: ProrationFactor;
  /** Lines billed now (null when there are none). */
  immediate: RatedInvoice | null;
  /** Lines for the next period invoice (pass as deferred_lines). */
  deferred_lines: RatedLine[];
}

export function resolveStrategy(
  requested: ProrationStrategy | undefined,
  plan: RatingPlanVersion,
  organization?: ProrationStrategy,
): ProrationStrategy {
  const s = requested ?? plan.proration_strategy ?? organization ?? DEFAULT_PRORATION_STRATEGY;
  if (!PRORATION_STRATEGIES.includes(s)) throw new RatingError('invalid_proration_strategy', `unknown proration strategy ${String(s)}`, 'strategy');
  return s;
}

/**
 * A plan, seat or add-on change effective at `effective_at` inside a cycle. Flat-fee components are
 * matched by `${type}:${product_key}`; unchanged components produce nothing. Returns the lines for
 * an immediate invoice and the lines deferred to the next period invoice. (The usage side of the
 * change is the segment list given to ratePeriodInvoice.)
 */
export function rateTransition(input: TransitionInput): TransitionResult {
  const anchor = resolveAnchor(input.anchor_day);
  const cur = planCurrency([input.from, input.to]);
  const t = toMs(input.effective_at, 'effective_at');
  const day = startOfUtcDay(t);
  const cycle = periodContaining(anchor, iso(day));
  const cs = toMs(cycle.start);
  const ce = toMs(cycle.end);
  const monthF = spanFactor(day, ce, cs, ce);
  const strategy = resolveStrategy(input.strategy, input.from.plan, input.organization_strategy);
  const direction = classifyTransition(input.from, input.to);
  const conversion = isConversion(input.from, input.to);

  const olds = feeComponents(input.from, cur);
  const news = feeComponents(input.to, cur);
  const oldBy = new Map(olds.map((c) => [c.component, c]));
  const newBy = new Map(news.map((c) => [c.component, c]));
  const same = (a: FeeComponent | undefined, b: FeeComponent | undefined) => !!a && !!b && a.fee.eq(b.fee) && a.interval === b.interval;
  const changedOld = olds.filter((c) => !same(c, newBy.get(c.component)) && c.fee.gt(0));
  const changedNew = news.filter((c) => !same(oldBy.get(c.component), c) && c.fee.gt(0));

  const feePeriod = (c: FeeComponent): { f: ProrationFactor; full: { start: number; end: number } } => {
    if (c.interval === 'month') return { f: monthF, full: { start: cs, end: ce } };
    const fy = feeYearContaining(input.subscription_start, anchor, iso(day));
    const fs = toMs(fy.full.start);
    const fe = toMs(fy.full.end);
    return { f: spanFactor(day, fe, fs, fe), full: { start: fs, end: fe } };
  };
  const suffix = iso(t);
  let applied = strategy;
  const intervalsDiffer = [...changedOld, ...changedNew].some((c) => c.interval !== input.from.plan.interval) || input.from.plan.interval !== input.to.plan.interval;
  if (strategy === 'difference_immediately' && intervalsDiffer) applied = 'prorated_immediately';

  const immediate: RatedLine[] = [];
  const deferred: RatedLine[] = [];
  const credits = changedOld.map((c) => {
    const fp = feePeriod(c);
    return prorationLine('credit', c, cur, fp.f, fp.full, suffix);
  });

  switch (applied) {
    case 'prorated_immediately':
    case 'prorated_next_invoice': {
      const charges = changedNew.map((c) => {
        const fp = feePeriod(c);
        return prorationLine('charge', c, cur, fp.f, fp.full, suffix);
      });
      (applied === 'prorated_immediately' ? immediate : deferred).push(...credits, ...charges);
      break;
    }
    case 'full_immediately': {
      const charges = changedNew.map((c) => {
        const fp = feePeriod(c);
        return prorationLine('full_charge', c, cur, fp.f, fp.full, suffix);
      });
      immediate.push(...credits, ...charges);
      break;
    }
    case 'difference_immediately': {
      const end = input.to.plan.interval === 'year' ? feePeriod(changedNew[0] ?? changedOld[0]).full.end : ce;
      const line = differenceLine(changedOld, changedNew, cur, { start: day, end }, `${input.from.plan.name}`, `${input.to.plan.name}`, suffix);
      if (line) (dec(line.amount_exact).isNegative() ? deferred : immediate).push(line);
      break;
    }
  }
  return {
    strategy,
    applied_strategy: applied,
    direction,
    conversion,
    period: cycle,
    proration: monthF,
    immediate: immediate.length ? invoice('transition', input.subscription_id, cur, cycle, immediate, input.tax_rate) : null,
    deferred_lines: deferred,
  };
}
