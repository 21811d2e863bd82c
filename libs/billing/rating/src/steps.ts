/**
 * Computation steps: the replayable record of how a line's amount was computed.
 *
 * Rating computes every figure THROUGH `StepLog.add`, which evaluates the operation with the same
 * `evaluateStep` that `replaySteps` uses, so a stored line's steps can never drift from the
 * arithmetic that produced it. A step is plain JSON:
 *
 *   { op, name?, inputs, refs?, result, note }
 *
 * - `inputs` are literal decimal strings (or a few text parameters: `mode`, an open tier bound
 *   `to: null`), readable as they stand by an explanation endpoint;
 * - `name` names the value the step produces (`usage`, `included_used`, `amount_exact`, …);
 * - `refs` says which inputs are earlier steps' values (`{minuend: 'usage'}`): a replay checks the
 *   literal equals what it recomputed for that name, so the chain from declared inputs to the
 *   amount is verified, not just each step in isolation.
 *
 * Every invoice line's steps end with `amount_exact` (the exact amount) and `amount` (the one
 * half-up rounding to the currency minor unit).
 */
import { Decimal, dec, roundHalfUp } from '@closebook/money';
import { RatingError } from './errors';
import { ONE, str, ZERO } from './util';

export type StepOp =
  | 'input'
  | 'sum'
  | 'product'
  | 'difference'
  | 'min'
  | 'max'
  | 'divide'
  | 'prorate'
  | 'ceil_div'
  | 'round'
  | 'round_up'
  | 'tier_quantity'
  | 'tier_amount'
  | 'if_positive'
  | 'overage_mode'
  | 'negate';

/** What each op computes (documentation; also served by explanation endpoints). */
export const STEP_OPS: Readonly<Record<StepOp, string>> = {
  input: 'value: a declared input (usage from a rollup, a price, an allowance)',
  sum: 'sum of all inputs (an empty sum is 0)',
  product: 'product of all inputs',
  difference: 'minuend − subtrahend',
  min: 'smallest input',
  max: 'largest input',
  divide: 'dividend ÷ divisor',
  prorate: 'amount × days ÷ days_in_period',
  ceil_div: 'ceil(quantity ÷ package_size): packages started',
  round: 'amount rounded half-up (ties away from zero) to minor_units decimals',
  round_up: 'value rounded up (toward +∞) to scale decimals',
  tier_quantity: 'part of quantity inside the tier (from, to]: max(0, min(quantity, to) − from); to null = open',
  tier_amount: 'quantity × unit_amount + (quantity > 0 ? flat_amount : 0)',
  if_positive: 'quantity > 0 ? amount : 0',
  overage_mode: "mode 'block' → 0 (capped: recorded, never billed); mode 'bill' → quantity",
  negate: '−value',
};

export interface Step {
  op: StepOp;
  /** Name of the value this step produces; later steps refer to it through `refs`. */
  name?: string;
  inputs: Record<string, string | null>;
  /** input parameter → name of the earlier step whose result it is. */
  refs?: Record<string, string>;
  result: string;
  note: string;
}

const TEXT_INPUTS: Partial<Record<StepOp, readonly string[]>> = {
  overage_mode: ['mode'],
  tier_quantity: ['to'],
};

/**
 * Inputs already held as Decimals by the caller that wrote their text (`StepLog.add`): each equals
 * `dec` of its text (the text is that Decimal printed exactly), so using it skips a parse and
 * changes nothing. A replay has only the text.
 */
type Parsed = Readonly<Record<string, Decimal>> | undefined;

function num(inputs: Record<string, string | null>, key: string, op: string, parsed?: Parsed): Decimal {
  const v = inputs[key];
  if (typeof v !== 'string') throw new RatingError('invalid_step', `${op}: input ${key} is missing`, key);
  return parsed?.[key] ?? dec(v);
}

function all(inputs: Record<string, string | null>, op: string, parsed?: Parsed): Decimal[] {
  return Object.keys(inputs).map((k) => num(inputs, k, op, parsed));
}

function smallInt(inputs: Record<string, string | null>, key: string, op: string): number {
  const d = num(inputs, key, op);
  if (!d.isInteger() || d.isNegative() || d.gt(60)) {
    throw new RatingError('invalid_step', `${op}: ${key} must be an integer 0..60`, key);
  }
  return d.toNumber();
}

/** The single definition of every op, used both while rating and while replaying. */
export function evaluateStep(op: StepOp, inputs: Record<string, string | null>, parsed?: Parsed): Decimal {
  switch (op) {
    case 'input':
      return num(inputs, 'value', op, parsed);
    case 'sum':
      return all(inputs, op, parsed).reduce((a, b) => a.plus(b), ZERO);
    case 'product':
      return all(inputs, op, parsed).reduce((a, b) => a.times(b), ONE);
    case 'difference':
      return num(inputs, 'minuend', op, parsed).minus(num(inputs, 'subtrahend', op, parsed));
    case 'min':
    case 'max': {
      const vs = all(inputs, op, parsed);
      if (vs.length === 0) throw new RatingError('invalid_step', `${op} needs at least one input`);
      return op === 'min' ? Decimal.min(...vs) : Decimal.max(...vs);
    }
    case 'divide': {
      const divisor = num(inputs, 'divisor', op, parsed);
      if (divisor.isZero()) throw new RatingError('invalid_step', 'divide by zero', 'divisor');
      return num(inputs, 'dividend', op, parsed).div(divisor);
    }
    case 'prorate': {
      const dip = num(inputs, 'days_in_period', op, parsed);
      if (dip.isZero()) throw new RatingError('invalid_step', 'prorate over a zero-day period', 'days_in_period');
      // Multiply first, divide once: exact whenever the fraction terminates.
      return num(inputs, 'amount', op, parsed).times(num(inputs, 'days', op, parsed)).div(dip);
    }
    case 'ceil_div': {
      const size = num(inputs, 'package_size', op, parsed);
      if (size.lte(0)) throw new RatingError('invalid_step', 'package_size must be positive', 'package_size');
      return num(inputs, 'quantity', op, parsed).div(size).ceil();
    }
    case 'round':
      return roundHalfUp(num(inputs, 'amount', op, parsed), smallInt(inputs, 'minor_units', op));
    case 'round_up':
      return num(inputs, 'value', op, parsed).toDecimalPlaces(smallInt(inputs, 'scale', op), Decimal.ROUND_CEIL);
    case 'tier_quantity': {
      const q = num(inputs, 'quantity', op, parsed);
      const from = num(inputs, 'from', op, parsed);
      const to = inputs.to === null || inputs.to === undefined ? null : dec(inputs.to);
      const capped = to === null ? q : Decimal.min(q, to);
      return Decimal.max(ZERO, capped.minus(from));
    }
    case 'tier_amount': {
      const q = num(inputs, 'quantity', op, parsed);
      const unit = num(inputs, 'unit_amount', op, parsed);
      const flat = inputs.flat_amount == null ? ZERO : dec(inputs.flat_amount);
      return q.times(unit).plus(q.gt(0) ? flat : ZERO);
    }
    case 'if_positive':
      return num(inputs, 'quantity', op, parsed).gt(0) ? num(inputs, 'amount', op, parsed) : ZERO;
    case 'overage_mode': {
      const mode = inputs.mode;
      if (mode !== 'bill' && mode !== 'block') throw new RatingError('invalid_step', `unknown overage mode ${String(mode)}`, 'mode');
      return mode === 'block' ? ZERO : num(inputs, 'quantity', op, parsed);
    }
    case 'negate':
      return num(inputs, 'value', op, parsed).negated();
    default:
      throw new RatingError('invalid_step', `unknown step op ${String(op)}`, 'op');
  }
}

function formatResult(op: StepOp, inputs: Record<string, string | null>, v: Decimal): string {
  if (op === 'round') return v.toFixed(dec(inputs.minor_units as string).toNumber());
  return str(v.isZero() ? ZERO : v);
}

/** A computed value, optionally named so later steps can reference it. */
export interface Val {
  value: Decimal;
  name?: string;
}

export type Arg = Val | Decimal | string | null;

function isVal(a: Arg): a is Val {
  return a !== null && typeof a === 'object' && !Decimal.isDecimal(a) && 'value' in a;
}

/** Records steps while computing them. */
export class StepLog {
  readonly steps: Step[] = [];

  add(op: StepOp, args: Record<string, Arg>, note: string, name?: string): Val {
    const inputs: Record<string, string | null> = {};
    const parsed: Record<string, Decimal> = {};
    let refs: Record<string, string> | undefined;
    for (const k in args) {
      const a = args[k];
      if (a === null) inputs[k] = null;
      else if (typeof a === 'string') inputs[k] = a;
      else {
        const d = isVal(a) ? a.value : a;
        inputs[k] = str(d);
        // -0 prints as "0", which parses as 0.
        parsed[k] = d.isZero() ? ZERO : d;
        if (isVal(a) && a.name) (refs ??= {})[k] = a.name;
      }
    }
    const value = evaluateStep(op, inputs, parsed);
    // Built key by key in the stored order (op, name?, inputs, refs?, result, note): spreading optional
    // parts cost more than the step's arithmetic.
    const step = { op } as Step;
    if (name) step.name = name;
    step.inputs = inputs;
    if (refs) step.refs = refs;
    step.result = formatResult(op, inputs, value);
    step.note = note;
    this.steps.push(step);
    return name ? { value, name } : { value };
  }

  /** Copies steps recorded elsewhere (an allowance derivation) in front of what follows. */
  append(steps: readonly Step[]): void {
    for (const s of steps) this.steps.push(cloneStep(s));
  }
}

export function cloneStep(s: Step): Step {
  return {
    op: s.op,
    ...(s.name ? { name: s.name } : {}),
    inputs: { ...s.inputs },
    ...(s.refs ? { refs: { ...s.refs } } : {}),
    result: s.result,
    note: s.note,
  };
}

export interface ReplayMismatch {
  index: number;
  op: string;
  name?: string;
  reason: string;
  expected?: string;
  actual?: string;
}

export interface ReplayResult {
  ok: boolean;
  /** Recomputed value of every named step (the latest definition of a name wins). */
  values: Record<string, string>;
  mismatches: ReplayMismatch[];
}

/**
 * Recomputes every step from its inputs, checks each result and each reference to an earlier
 * step. Never throws on bad data: problems are reported as mismatches.
 */
export function replaySteps(steps: readonly Step[]): ReplayResult {
  const values: Record<string, Decimal> = {};
  const mismatches: ReplayMismatch[] = [];
  steps.forEach((s, index) => {
    const base = { index, op: String(s?.op), ...(s?.name ? { name: s.name } : {}) };
    try {
      if (!s || typeof s !== 'object' || typeof s.inputs !== 'object' || s.inputs === null) {
        throw new RatingError('invalid_step', 'malformed step');
      }
      // A referenced input is parsed once: to check it against the step it names, then to evaluate.
      const parsed: Record<string, Decimal> = {};
      for (const [param, ref] of Object.entries(s.refs ?? {})) {
        const known = values[ref];
        const literal = s.inputs[param];
        // Parsed only where it is compared (a malformed literal fails here, as it always did).
        const d = known !== undefined && typeof literal === 'string' ? dec(literal) : null;
        if (known === undefined) {
          mismatches.push({ ...base, reason: `input ${param} refers to unknown step ${ref}` });
        } else if (d === null || !d.eq(known)) {
          mismatches.push({ ...base, reason: `input ${param} differs from step ${ref}`, expected: str(known), actual: String(literal) });
        }
        if (d !== null) parsed[param] = d;
      }
      for (const [k, v] of Object.entries(s.inputs)) {
        if (v === null && !(TEXT_INPUTS[s.op] ?? []).includes(k) && k !== 'flat_amount') {
          throw new RatingError('invalid_step', `input ${k} is null`);
        }
      }
      const v = evaluateStep(s.op, s.inputs, parsed);
      if (!dec(s.result).eq(v)) {
        mismatches.push({ ...base, reason: 'result differs from recomputation', expected: str(v), actual: s.result });
      }
      if (s.name) values[s.name] = v;
    } catch (e) {
      mismatches.push({ ...base, reason: e instanceof Error ? e.message : String(e) });
    }
  });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) out[k] = str(v);
  return { ok: mismatches.length === 0, values: out, mismatches };
}

export interface LineReplay {
  ok: boolean;
  /** Recomputed exact amount (step `amount_exact`), or null when the steps do not produce one. */
  amount_exact: string | null;
  /** Recomputed rounded amount (step `amount`), or null. */
  amount: string | null;
  mismatches: ReplayMismatch[];
}

/**
 * Replays a line's steps and returns the amount they produce. A line's stored `amount` must equal
 * the returned `amount`; reconciliation and explanations use this, never a second copy of the rules.
 */
export function replayLine(steps: readonly Step[]): LineReplay {
  const r = replaySteps(steps);
  const mismatches = [...r.mismatches];
  const exact = r.values.amount_exact ?? null;
  const amountStep = [...steps].reverse().find((s) => s?.name === 'amount');
  let amount: string | null = null;
  if (amountStep && r.values.amount !== undefined) {
    const mu = amountStep.inputs?.minor_units;
    amount = amountStep.op === 'round' && typeof mu === 'string' ? dec(r.values.amount).toFixed(Number(mu)) : r.values.amount;
  }
  if (exact === null) mismatches.push({ index: -1, op: '-', reason: 'no amount_exact step' });
  if (amount === null) mismatches.push({ index: -1, op: '-', reason: 'no amount step' });
  return { ok: mismatches.length === 0, amount_exact: exact, amount, mismatches };
}

/** The usage-line replay the brief names; identical to `replayLine`. */
export const replayUsageLine = replayLine;
