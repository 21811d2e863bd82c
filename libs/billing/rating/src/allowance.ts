/**
 * Allowances (SPEC §1, §2): the included quantity of a metered dimension per usage cycle, its
 * prorata over plan/seat segments, grants and the drawdown of usage against them.
 */
import { Decimal, dec } from '@closebook/money';
import { BillingPeriod } from './billing-periods';
import { RatingError } from './errors';
import { assertPeriod } from './proration';
import { Step, StepLog, Val } from './steps';
import {
  cmpStr,
  fmtQty,
  Instant,
  iso,
  parseCount,
  parseNonNegative,
  QUANTITY_SCALE,
  startOfUtcDay,
  str,
  toMs,
  wholeDays,
  ZERO,
} from './util';

export type AllowanceBasis = 'fixed' | 'per_seat';
export type OverageMode = 'bill' | 'block';

export interface AllowanceTerms {
  /** Included quantity per usage cycle (per seat when the basis is per_seat). */
  allowance: string;
  /** `fixed` (default): one pooled bucket; `per_seat`: allowance × seats. */
  allowance_basis?: AllowanceBasis;
  /** The plan version's multiplier (e.g. "1.2" on a yearly price); default 1. */
  allowance_multiplier?: string;
}

/** allowance × (per_seat ? seats : 1) × multiplier, exact. */
export function cycleAllowance(terms: AllowanceTerms, seats = 1): Decimal {
  const a = parseNonNegative(terms.allowance, 'allowance');
  const m = terms.allowance_multiplier === undefined ? dec(1) : parseNonNegative(terms.allowance_multiplier, 'allowance_multiplier');
  const s = terms.allowance_basis === 'per_seat' ? dec(parseCount(seats, 'seats')) : dec(1);
  return a.times(s).times(m);
}

export type TransitionKind = 'upgrade' | 'downgrade' | 'lateral';

export interface AllowanceSegmentInput extends AllowanceTerms {
  /** When this segment's terms took effect; they apply from the start of that UTC day. */
  from: Instant;
  seats?: number;
  /** How this segment was entered; an `upgrade` never lowers the period's allowance. */
  transition?: TransitionKind | null;
  /** For notes: "Pro v3, 5 seats". */
  label?: string;
}

export interface PeriodAllowanceInput {
  /** The full monthly cycle: the denominator of every segment's fraction. */
  cycle: BillingPeriod;
  /** The part of the cycle the subscription covers (default: the whole cycle), e.g. a partial first period. */
  period?: BillingPeriod;
  /** Sorted by `from`; the first is in force at the period start (its `from` may be earlier). */
  segments: AllowanceSegmentInput[];
}

export interface AllowanceSegmentShare {
  from: string;
  to: string;
  days: number;
  cycle_allowance: string;
  /** cycle_allowance × days ÷ days_in_cycle (display; the total divides once). */
  contribution: string;
  label?: string;
}

export interface PeriodAllowance {
  /** The period's included quantity: exact, rounded up at 12 decimals only when it does not terminate. */
  included: Decimal;
  /** Prorata sum before the upgrade floor and rounding. */
  prorata: Decimal;
  /** The upgrade floor that applied (null when none was higher than the prorata sum). */
  floor_applied: Decimal | null;
  days_in_cycle: number;
  segments: AllowanceSegmentShare[];
  /** Ends with the step named `period_allowance`. */
  steps: Step[];
}

/**
 * The period allowance, prorata: Σ allowance(segment) × days(segment) ÷ days(cycle), summed over
 * allowance-days and divided once so equal segments add back to exactly one allowance. An
 * `upgrade` segment adds a floor: the allowance the period would have had had the previous terms
 * run to the end of the period (so an upgrade can never lower the period's allowance, even when the
 * new plan includes less of this dimension). Non-terminating results are rounded UP at 12 decimals.
 */
export function periodAllowance(input: PeriodAllowanceInput, log: StepLog = new StepLog()): PeriodAllowance {
  const cs = toMs(input.cycle.start, 'cycle.start');
  const ce = toMs(input.cycle.end, 'cycle.end');
  assertPeriod(cs, ce, 'cycle');
  const ps = input.period ? toMs(input.period.start, 'period.start') : cs;
  const pe = input.period ? toMs(input.period.end, 'period.end') : ce;
  assertPeriod(ps, pe, 'period');
  if (ps < cs || pe > ce) throw new RatingError('period_outside_cycle', 'period must lie inside its cycle', 'period');
  const segs = input.segments;
  if (!Array.isArray(segs) || segs.length === 0) throw new RatingError('segments_empty', 'at least one segment is required', 'segments');
  const D = wholeDays(cs, ce);

  // Normalise to day bounds clipped to the period.
  const bounds = segs.map((s, i) => startOfUtcDay(toMs(s.from, `segments[${i}].from`)));
  bounds.forEach((b, i) => {
    if (i > 0 && b < bounds[i - 1]) throw new RatingError('segments_not_sorted', 'segments must be sorted by from', `segments[${i}].from`);
    if (i > 0 && b >= pe) throw new RatingError('segment_outside_period', 'a segment starts after the period ends', `segments[${i}].from`);
  });
  if (bounds[0] > ps) throw new RatingError('segments_gap', 'the first segment must be in force at the period start', 'segments[0].from');
  // Only the last segment that began before the period and the changes from its first day on count
  // (a change on the first day keeps its predecessor as a 0-day segment, for the upgrade floor).
  let first = 0;
  bounds.forEach((b, i) => {
    if (b < ps) first = i;
  });
  if (first > 0) {
    return periodAllowance(
      { ...input, segments: segs.slice(first).map((s, i) => (i === 0 ? { ...s, transition: null } : s)) },
      log,
    );
  }

  const shares: { from: number; to: number; days: number; cycle: Val; seg: AllowanceSegmentInput }[] = [];
  segs.forEach((seg, i) => {
    const from = Math.max(bounds[i], ps);
    const to = i + 1 < segs.length ? Math.max(bounds[i + 1], ps) : pe;
    const n = i + 1;
    const a = parseNonNegative(seg.allowance, `segments[${i}].allowance`);
    const args: Record<string, string> = { allowance: str(a) };
    let note = `${seg.label ? `${seg.label}: ` : ''}allowance ${fmtQty(a)}`;
    if (seg.allowance_basis === 'per_seat') {
      const seats = parseCount(seg.seats ?? 1, `segments[${i}].seats`);
      args.seats = String(seats);
      note += ` per seat × ${seats} seats`;
    }
    if (seg.allowance_multiplier !== undefined) {
      const m = parseNonNegative(seg.allowance_multiplier, `segments[${i}].allowance_multiplier`);
      args.allowance_multiplier = str(m);
      note += ` × multiplier ${str(m)}`;
    }
    const single = segs.length === 1 && from === cs && to === ce;
    const cycle = log.add('product', args, `${note} per cycle`, single ? 'period_allowance' : `segment_${n}_cycle_allowance`);
    shares.push({ from, to, days: wholeDays(from, to), cycle, seg });
  });

  const shareJson = (s: (typeof shares)[number]): AllowanceSegmentShare => ({
    from: iso(s.from),
    to: iso(s.to),
    days: s.days,
    cycle_allowance: str(s.cycle.value),
    contribution: str(s.cycle.value.times(s.days).div(D)),
    ...(s.seg.label ? { label: s.seg.label } : {}),
  });

  if (segs.length === 1 && shares[0].from === cs && shares[0].to === ce) {
    const v = shares[0].cycle.value;
    return { included: v, prorata: v, floor_applied: null, days_in_cycle: D, segments: [shareJson(shares[0])], steps: log.steps };
  }

  const dayVals: Record<string, Val> = {};
  shares.forEach((s, i) => {
    dayVals[`segment_${i + 1}_allowance_days`] = log.add(
      'product',
      { cycle_allowance: s.cycle, days: String(s.days) },
      `segment ${i + 1} ${iso(s.from).slice(0, 10)} – ${iso(s.to - 1).slice(0, 10)}: ${s.days}/${D} days`,
      `segment_${i + 1}_allowance_days`,
    );
  });
  const total = log.add('sum', dayVals, 'allowance-days over the period', 'allowance_days');
  const prorata = log.add('divide', { dividend: total, divisor: String(D) }, `prorata allowance: allowance-days ÷ ${D} days in the cycle`, 'prorata_allowance');

  const candidates: Record<string, Val> = { prorata };
  let floorApplied: Decimal | null = null;
  shares.forEach((s, k) => {
    if (k === 0 || s.seg.transition !== 'upgrade') return;
    const prev = shares[k - 1];
    const restDays = shares.slice(k).reduce((acc, x) => acc + x.days, 0);
    const kept = log.add(
      'product',
      { cycle_allowance: prev.cycle, days: String(restDays) },
      `upgrade floor: segment ${k}'s allowance kept for the remaining ${restDays} days`,
      `floor_${k + 1}_kept_days`,
    );
    const parts: Record<string, Val> = {};
    for (let j = 0; j < k; j++) parts[`segment_${j + 1}_allowance_days`] = dayVals[`segment_${j + 1}_allowance_days`];
    parts[`floor_${k + 1}_kept_days`] = kept;
    const fd = log.add('sum', parts, 'allowance-days had the upgrade not happened', `floor_${k + 1}_allowance_days`);
    candidates[`floor_${k + 1}`] = log.add('divide', { dividend: fd, divisor: String(D) }, 'an upgrade never lowers the period allowance', `floor_${k + 1}`);
  });

  let exact: Val = prorata;
  if (Object.keys(candidates).length > 1) {
    exact = log.add('max', candidates, 'period allowance: prorata, or the upgrade floor when higher', 'period_allowance_exact');
    if (exact.value.gt(prorata.value)) floorApplied = exact.value;
  }
  const included = log.add(
    'round_up',
    { value: exact, scale: String(QUANTITY_SCALE) },
    `included quantity, kept exact (rounded up only past ${QUANTITY_SCALE} decimals)`,
    'period_allowance',
  );
  return {
    included: included.value,
    prorata: prorata.value,
    floor_applied: floorApplied,
    days_in_cycle: D,
    segments: shares.map(shareJson),
    steps: log.steps,
  };
}

// ---------------------------------------------------------------------------------------------
// Grants and drawdown

export type GrantKind = 'period' | 'rollover';

/** One bucket in the allowance ledger. */
export interface AllowanceGrant {
  grant_id: string;
  /** `period`: a cycle's own allowance; `rollover`: units carried out of an earlier cycle. */
  kind: GrantKind;
  quantity: string;
  /** Start (ISO) of the first period the grant can be drawn in. */
  granted_in_period: string;
  /** Start (ISO) of the last period the grant can be drawn in. */
  expires_after_period: string;
  /** Drawn in earlier periods (a grant living several cycles); default 0. */
  drawn_before?: string;
  product_key?: string;
  price_key?: string | null;
  /** Rollover grants: start of the period the units were carried out of. */
  carried_from_period?: string;
}

export interface GrantDraw {
  grant_id: string;
  kind: GrantKind;
  granted: string;
  /** Available at the start of this period: granted − drawn_before. */
  available: string;
  drawn: string;
  remaining: string;
}

export interface Drawdown {
  usage: Decimal;
  /** Σ available over the grants. */
  available: Decimal;
  /** Usage covered by grants. */
  included_used: Decimal;
  /** usage − included_used (never negative). */
  overage_quantity: Decimal;
  /** In draw order. */
  draws: GrantDraw[];
  steps: Step[];
}

function grantAvailable(g: AllowanceGrant, i: number): Decimal {
  const q = parseNonNegative(g.quantity, `grants[${i}].quantity`);
  const before = g.drawn_before === undefined ? ZERO : parseNonNegative(g.drawn_before, `grants[${i}].drawn_before`);
  if (before.gt(q)) throw new RatingError('overdrawn_grant', `grant ${g.grant_id} was drawn beyond its quantity`, `grants[${i}].drawn_before`);
  return q.minus(before);
}

export function validateGrants(grants: readonly AllowanceGrant[]): void {
  const seen = new Set<string>();
  grants.forEach((g, i) => {
    if (!g || typeof g.grant_id !== 'string' || g.grant_id === '') {
      throw new RatingError('invalid_grant', 'grant_id is required', `grants[${i}].grant_id`);
    }
    if (seen.has(g.grant_id)) throw new RatingError('duplicate_grant', `grant ${g.grant_id} is listed twice`, `grants[${i}].grant_id`);
    seen.add(g.grant_id);
    if (g.kind !== 'period' && g.kind !== 'rollover') throw new RatingError('invalid_grant', 'kind must be period or rollover', `grants[${i}].kind`);
    const a = toMs(g.granted_in_period, `grants[${i}].granted_in_period`);
    const b = toMs(g.expires_after_period, `grants[${i}].expires_after_period`);
    if (b < a) throw new RatingError('invalid_grant', 'a grant cannot expire before it is granted', `grants[${i}].expires_after_period`);
    grantAvailable(g, i);
  });
}

/**
 * Draw order: rollover grants first, oldest first (granted_in_period, then the one expiring first,
 * then grant_id); then period grants (granted_in_period, grant_id).
 */
export function drawOrder(grants: readonly AllowanceGrant[]): AllowanceGrant[] {
  const rank = (g: AllowanceGrant) => (g.kind === 'rollover' ? 0 : 1);
  return [...grants].sort(
    (x, y) =>
      rank(x) - rank(y) ||
      toMs(x.granted_in_period) - toMs(y.granted_in_period) ||
      toMs(x.expires_after_period) - toMs(y.expires_after_period) ||
      cmpStr(x.grant_id, y.grant_id),
  );
}

/** Grants that can be drawn in the period starting at `periodStart`. */
export function liveGrants(grants: readonly AllowanceGrant[], periodStart: Instant): AllowanceGrant[] {
  const t = toMs(periodStart, 'period_start');
  return grants.filter((g) => toMs(g.granted_in_period) <= t && t <= toMs(g.expires_after_period));
}

/** Internal: records the drawdown into `log`; `grantRefs` ties a grant's quantity to an earlier step. */
export function drawInto(
  log: StepLog,
  grants: readonly AllowanceGrant[],
  usage: Val,
  grantRefs: ReadonlyMap<string, Val> = new Map(),
): Drawdown {
  validateGrants(grants);
  if (usage.value.isNegative() && !usage.value.isZero()) throw new RatingError('negative_not_allowed', 'usage must not be negative', 'usage');
  const ordered = drawOrder(grants);
  const draws: GrantDraw[] = [];
  const drawn: Record<string, Val> = {};
  let rest: Val = usage;
  let available = ZERO;
  ordered.forEach((g, i) => {
    const n = i + 1;
    const avail = grantAvailable(g, grants.indexOf(g));
    available = available.plus(avail);
    const what =
      g.kind === 'rollover'
        ? `rollover grant ${g.grant_id}${g.carried_from_period ? ` carried from ${g.carried_from_period.slice(0, 10)}` : ''}, usable until the period starting ${g.expires_after_period.slice(0, 10)} ends`
        : `period allowance grant ${g.grant_id}`;
    const ref = grantRefs.get(g.grant_id);
    const gv = log.add(
      'input',
      { value: ref && ref.value.eq(avail) ? ref : str(avail) },
      `${what}: ${fmtQty(avail)} available`,
      `grant_${n}_available`,
    );
    const d = log.add('min', { usage_left: rest, available: gv }, `drawn from ${g.grant_id}`, `grant_${n}_drawn`);
    drawn[`grant_${n}_drawn`] = d;
    if (i < ordered.length - 1) {
      rest = log.add('difference', { minuend: rest, subtrahend: d }, 'usage not yet covered', `usage_left_${n}`);
    }
    draws.push({
      grant_id: g.grant_id,
      kind: g.kind,
      granted: str(parseNonNegative(g.quantity, 'quantity')),
      available: str(avail),
      drawn: str(d.value),
      remaining: str(avail.minus(d.value)),
    });
  });
  const used = log.add('sum', drawn, ordered.length ? 'usage covered by the allowance (rollover first, oldest first)' : 'no allowance', 'included_used');
  const over = log.add('difference', { minuend: usage, subtrahend: used }, 'usage above the allowance', 'overage_quantity');
  return { usage: usage.value, available, included_used: used.value, overage_quantity: over.value, draws, steps: log.steps };
}

/**
 * Draws `usage` from `grants`: rollover grants first (oldest first), then the period's own
 * allowance. Never draws more than a grant has; included_used + overage_quantity = usage.
 */
export function drawDown(grants: readonly AllowanceGrant[], usage: Decimal | string): Drawdown {
  const log = new StepLog();
  const u = typeof usage === 'string' ? parseNonNegative(usage, 'usage') : dec(usage);
  const uv = log.add('input', { value: u }, 'usage in the period', 'usage');
  return drawInto(log, grants, uv);
}

/** `block` (a capped free tier): overage is recorded, billable quantity is 0, and the state is capped once usage reaches the allowance. */
export function applyOverageMode(
  usage: Decimal,
  available: Decimal,
  overage: Decimal,
  mode: OverageMode = 'bill',
): { billable: Decimal; capped: boolean } {
  if (mode === 'block') return { billable: ZERO, capped: usage.gte(available) };
  return { billable: overage, capped: false };
}

/** The period grant for a dimension built from its period allowance. */
export function periodGrant(args: {
  grant_id: string;
  period: BillingPeriod;
  quantity: Decimal;
  product_key?: string;
  price_key?: string | null;
}): AllowanceGrant {
  const start = iso(toMs(args.period.start));
  return {
    grant_id: args.grant_id,
    kind: 'period',
    quantity: str(args.quantity),
    granted_in_period: start,
    expires_after_period: start,
    ...(args.product_key !== undefined ? { product_key: args.product_key } : {}),
    ...(args.price_key !== undefined ? { price_key: args.price_key } : {}),
  };
}
