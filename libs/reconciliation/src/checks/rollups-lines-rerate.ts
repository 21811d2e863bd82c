/**
 * The re-rating half of check 2 (rollups → invoice lines, SPEC §6.2): a billed usage line must be
 * what the rating core makes of its rollups, the pinned plan versions and the live allowance grants.
 *
 * The invoice's usage is rated again by the rating core itself (`ratePeriodInvoice`, never a second
 * copy of its rules) from the input invoicing rebuilds read-only (`PeriodRatingService.billedUsageInputs`:
 * the subscription's segments with their plan versions from the catalog, the rollover grants live in
 * the period from the allowance ledger, and as usage the invoice's BILLED rollups — the snapshot
 * taken at rating, so late usage and a stale draft are judged against what was billed). Each stored
 * usage line is then compared with the re-rated line of the same `line_key`, input by input:
 *
 * - `quantity_mismatch`: the usage its steps used (step `usage`) or its quantity differs from the
 *   re-rating's (the rollups' aggregate as rating combines them: `usageOf` + the core's summing);
 * - `allowance_mismatch`: an allowance, seat count or allowance multiplier of the allowance steps;
 * - `proration_mismatch`: the segments (their number or shape) or their days / days in the cycle;
 * - `rollover_mismatch`: the rollover grants drawn first (how many, what each had available, and —
 *   with the usage right — what was drawn from each);
 * - `price_mismatch`: the overage mode, the price model snapshot or unit amount of the line, or any
 *   price literal of its pricing steps (unit amounts, packages, tier bounds and amounts, flat
 *   amounts), checked by pricing the line's own billable quantity with the pinned model (`priceQuantity`);
 * - `unexpected_line`: the re-rating has no line of this key (with the differences that explain it,
 *   found on the re-rated line of the same dimension);
 * - `rerate_mismatch`: none of the above, yet the replayed amount differs from the re-rated one;
 * - `rerate_failed`: the invoice could not be re-rated (no rating input, or the core refused it).
 *
 * Only literal inputs are compared (an input named in `refs` is an earlier step's value, which the
 * replay already verifies), so each difference names a cause, not its consequences. Pure apart
 * from its inputs.
 */
import { dec, MoneyError } from '@closebook/money';
import { priceQuantity, ratePeriodInvoice, type PriceModel, type RatedLine, type Step } from '@closebook/rating';
import type { BilledUsageInput } from '@closebook/invoicing';

export const RERATE_PROBLEMS = [
  'quantity_mismatch',
  'allowance_mismatch',
  'proration_mismatch',
  'rollover_mismatch',
  'price_mismatch',
  'unexpected_line',
  'rerate_mismatch',
  'rerate_failed',
] as const;
export type RerateProblem = (typeof RERATE_PROBLEMS)[number];

/** One difference between a stored usage line and its re-rating: what differed, where, both values. */
export interface RerateDifference {
  problem: RerateProblem;
  /** The input or column that differs (`usage`, `quantity`, `allowance`, `unit_amount`, `segments`, …). */
  field: string;
  /** The step it was found in, by name. */
  step?: string;
  expected: unknown;
  actual: unknown;
}

/** An invoice's usage re-rated: its usage lines by line key, or why it could not be. */
export type InvoiceRerate = { ok: true; lines: Map<string, RatedLine> } | { ok: false; code: string; reason: string };

/** A stored usage line as the check reads it. */
export interface StoredUsageLine {
  line_key: string;
  type: string;
  product_key: string | null;
  price_key: string | null;
  quantity: string;
  unit_amount: string | null;
  price: PriceModel | null;
  currency: string;
  amount: string;
  steps: Step[];
}

export interface LineRerate {
  /** The re-rated amount (0 when the re-rating has no such line); null when it could not re-rate. */
  expected_amount: string | null;
  /** Problem codes in order of first appearance. */
  problems: RerateProblem[];
  differences: RerateDifference[];
}

/** At most this many differences are kept per line (the problems list them all). */
export const MAX_DIFFERENCES = 20;

const USAGE_TYPES = new Set(['usage_included', 'usage_overage']);

/** Rates an invoice's usage again with the rating core; a refusal of the core is an answer, not an error. */
export function rerateInvoice(billed: BilledUsageInput | undefined): InvoiceRerate {
  if (!billed) return { ok: false, code: 'no_rating_input', reason: 'not a period invoice with its billing period and subscription' };
  try {
    const rated = ratePeriodInvoice(billed.input);
    return { ok: true, lines: new Map(rated.lines.filter((l) => USAGE_TYPES.has(l.type)).map((l) => [l.line_key, l])) };
  } catch (err) {
    if (err instanceof MoneyError) return { ok: false, code: err.code, reason: err.message };
    throw err;
  }
}

/**
 * The re-rated line a stored line is identical to — the same steps (as JSON: key order aside, the
 * notes included), quantity, unit amount and price model — or null. Such a line differs in nothing
 * and replays as its twin was computed (the rating core computed those very steps with the
 * evaluator the replay uses): the common case, answered without a replay or a comparison.
 */
export function identicalTwin(line: StoredUsageLine, rerate: InvoiceRerate): RatedLine | null {
  if (!rerate.ok) return null;
  const twin = rerate.lines.get(line.line_key);
  if (!twin || twin.type !== line.type || !sameValue(twin.quantity, line.quantity) || !sameValue(twin.unit_amount, line.unit_amount)) return null;
  return sameJson(twin.price ?? null, line.price ?? null) && sameJson(twin.steps, line.steps) ? twin : null;
}

/** Compares one stored usage line with the re-rating of its invoice (see the file comment). */
export function compareWithRerate(line: StoredUsageLine, rerate: InvoiceRerate, replayedAmountExact: string | null): LineRerate {
  if (!rerate.ok) {
    return { expected_amount: null, problems: ['rerate_failed'], differences: [{ problem: 'rerate_failed', field: rerate.code, expected: null, actual: rerate.reason }] };
  }
  const diffs: RerateDifference[] = [];
  const twin = rerate.lines.get(line.line_key) ?? null;
  // The head (allowance, usage, grants) is shared by a dimension's lines: the twin's, else its sibling's.
  const sameDimension = (l: RatedLine) => l.product_key === line.product_key && (l.price_key ?? null) === (line.price_key ?? null);
  const model = twin ?? [...rerate.lines.values()].find(sameDimension) ?? null;
  const stored = partsOf(line.steps);
  const expected = model ? ratedPartsOf(model) : null;

  // Causes first (usage, allowance and fractions, rollover, price), then what follows from them (the line's quantity).
  const usage = expected?.usage ?? '0';
  const usageMatches = sameValue(usage, stored.usage);
  if (!usageMatches) diffs.push({ problem: 'quantity_mismatch', field: 'usage', step: 'usage', expected: usage, actual: stored.usage });
  if (expected) {
    compareHead(expected.head, stored.head, diffs);
    compareRollover(expected, stored, usageMatches, diffs);
  }
  if (twin && line.type === 'usage_overage') comparePrice(twin, ratedPartsOf(twin), line, stored, diffs);
  if (!twin) diffs.push({ problem: 'unexpected_line', field: 'line_key', expected: null, actual: line.line_key });
  else if (!sameValue(twin.quantity, line.quantity)) diffs.push({ problem: 'quantity_mismatch', field: 'quantity', expected: twin.quantity, actual: line.quantity });
  if (!diffs.length && twin && (replayedAmountExact === null || !sameValue(twin.amount_exact, replayedAmountExact))) {
    diffs.push({ problem: 'rerate_mismatch', field: 'amount_exact', expected: twin.amount_exact, actual: replayedAmountExact });
  }
  const problems: RerateProblem[] = [];
  for (const d of diffs) if (!problems.includes(d.problem)) problems.push(d.problem);
  const scale = (line.amount.split('.')[1] ?? '').length;
  return { expected_amount: twin ? twin.amount : dec(0).toFixed(scale), problems, differences: diffs.slice(0, MAX_DIFFERENCES) };
}

/** The re-rated usage lines of an invoice that no stored line of the same key answers. */
export function missingLines(rerate: InvoiceRerate, storedKeys: ReadonlySet<string>): RatedLine[] {
  return rerate.ok ? [...rerate.lines.values()].filter((l) => !storedKeys.has(l.line_key)) : [];
}

// ---------------------------------------------------------------------------------------------

interface GrantDraw {
  available: string | null;
  drawn: string | null;
  /** The period's own allowance (its value is the `period_allowance` step's); else a rollover grant. */
  period: boolean;
}

interface StepParts {
  /** The allowance derivation: every step before `usage`. */
  head: Step[];
  usage: string | null;
  /** In draw order (rollover grants first). */
  grants: GrantDraw[];
  billable: Step | null;
  /** The pricing of the billable quantity: after `billable_quantity`, up to `amount_exact`. */
  price: Step[];
}

/** A re-rated line's parts, split once however many stored lines it answers. */
const ratedParts = new WeakMap<RatedLine, StepParts>();
function ratedPartsOf(line: RatedLine): StepParts {
  let p = ratedParts.get(line);
  if (!p) ratedParts.set(line, (p = partsOf(line.steps)));
  return p;
}

function partsOf(raw: readonly Step[]): StepParts {
  const steps = (Array.isArray(raw) ? raw : []).filter((s): s is Step => !!s && typeof s === 'object' && typeof s.inputs === 'object' && s.inputs !== null);
  const named = byName(steps);
  const u = steps.findIndex((s) => s.name === 'usage');
  const grants: GrantDraw[] = [];
  for (const s of steps) {
    const m = /^grant_(\d+)_available$/.exec(s.name ?? '');
    if (!m) continue;
    grants.push({ available: text(s.inputs.value), drawn: named.get(`grant_${m[1]}_drawn`)?.result ?? null, period: s.refs?.value === 'period_allowance' });
  }
  const b = steps.findIndex((s) => s.name === 'billable_quantity');
  let price: Step[] = [];
  if (b >= 0) {
    const end = steps.findIndex((s, i) => i > b && s.name === 'amount_exact');
    price = steps.slice(b + 1, end >= 0 ? end + 1 : steps.length);
  }
  return { head: u >= 0 ? steps.slice(0, u) : [], usage: u >= 0 ? text(steps[u].inputs.value) : null, grants, billable: b >= 0 ? steps[b] : null, price };
}

/** The allowance derivation: same steps (segments), same allowances, seats, multipliers and days. */
function compareHead(expected: Step[], actual: Step[], diffs: RerateDifference[]): void {
  if (shape(expected) !== shape(actual)) {
    diffs.push({ problem: 'proration_mismatch', field: 'segments', expected: expected.map((s) => s.name ?? s.op), actual: actual.map((s) => s.name ?? s.op) });
  }
  compareLiterals(expected, actual, diffs, (key) => (key === 'allowance' || key === 'seats' || key === 'allowance_multiplier' ? 'allowance_mismatch' : key === 'days' || key === 'divisor' ? 'proration_mismatch' : 'rerate_mismatch'));
}

/** The rollover grants drawn first: as many, each with the same available units (and drawn, when the usage agrees). */
function compareRollover(expected: StepParts, actual: StepParts, usageMatches: boolean, diffs: RerateDifference[]): void {
  const e = expected.grants.filter((g) => !g.period);
  const a = actual.grants.filter((g) => !g.period);
  if (e.length !== a.length || e.some((g, i) => !sameValue(g.available, a[i].available))) {
    diffs.push({ problem: 'rollover_mismatch', field: 'rollover_available', expected: e.map((g) => g.available), actual: a.map((g) => g.available) });
  } else if (usageMatches && e.some((g, i) => !sameValue(g.drawn, a[i].drawn))) {
    diffs.push({ problem: 'rollover_mismatch', field: 'rollover_drawn', expected: e.map((g) => g.drawn), actual: a.map((g) => g.drawn) });
  }
}

/** The overage's price: mode, the model snapshot, the unit amount, and the literals of its pricing steps. */
function comparePrice(twin: RatedLine, expected: StepParts, line: StoredUsageLine, actual: StepParts, diffs: RerateDifference[]): void {
  const em = text(expected.billable?.inputs.mode);
  const am = text(actual.billable?.inputs.mode);
  if (em !== am) diffs.push({ problem: 'price_mismatch', field: 'overage', step: 'billable_quantity', expected: em, actual: am });
  if (!sameJson(twin.price ?? null, line.price ?? null)) diffs.push({ problem: 'price_mismatch', field: 'price', expected: twin.price ?? null, actual: line.price ?? null });
  if (!sameValue(twin.unit_amount, line.unit_amount)) diffs.push({ problem: 'price_mismatch', field: 'unit_amount', expected: twin.unit_amount, actual: line.unit_amount });
  if (em !== 'bill' || am !== 'bill' || !twin.price || !actual.billable || !expected.billable) return;
  // The pinned model pricing the line's own billable quantity: the steps the line must have priced
  // with — the re-rated line's own when the quantities agree, else the model priced again.
  let steps = expected.price;
  if (!sameValue(expected.billable.result, actual.billable.result)) {
    try {
      steps = priceQuantity(twin.price, dec(actual.billable.result), line.currency).steps.slice(1); // after its `quantity` input
    } catch {
      return; // an unreadable quantity: the replay says so
    }
  }
  if (shape(steps) !== shape(actual.price)) {
    diffs.push({ problem: 'price_mismatch', field: 'price_steps', expected: steps.map((s) => s.name ?? s.op), actual: actual.price.map((s) => s.name ?? s.op) });
  }
  compareLiterals(steps, actual.price, diffs, () => 'price_mismatch');
}

/** Literal (non-`refs`) inputs of the steps present on both sides under one name and op. */
function compareLiterals(expected: Step[], actual: Step[], diffs: RerateDifference[], problemOf: (key: string) => RerateProblem): void {
  const a = byName(actual);
  for (const es of expected) {
    if (!es.name) continue;
    const as = a.get(es.name);
    if (!as || as.op !== es.op) continue;
    const keys = new Set([...Object.keys(es.inputs), ...Object.keys(as.inputs)]);
    for (const key of keys) {
      if (es.refs?.[key] !== undefined || as.refs?.[key] !== undefined) continue;
      const ev = es.inputs[key] ?? null;
      const av = as.inputs[key] ?? null;
      if (!sameValue(ev, av)) diffs.push({ problem: problemOf(key), field: key, step: es.name, expected: ev, actual: av });
    }
  }
}

function byName(steps: readonly Step[]): Map<string, Step> {
  const out = new Map<string, Step>();
  for (const s of steps) if (s.name && !out.has(s.name)) out.set(s.name, s);
  return out;
}

/** Deep equality of JSON values (object key order aside). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    n++;
    if (!sameJson(x[k], y[k])) return false;
  }
  for (const k in y) if (y[k] !== undefined) n--;
  return n === 0;
}

const shape = (steps: readonly Step[]) => steps.map((s) => `${s.name ?? ''}:${s.op}`).join('|');

const text = (v: unknown): string | null => (typeof v === 'string' ? v : v === null || v === undefined ? null : String(v));

/** Equal as decimals when both are decimals (a numeric column may print "15000" or "15000.00"), else as text. */
function sameValue(a: unknown, b: unknown): boolean {
  const x = text(a);
  const y = text(b);
  if (x === null || y === null) return x === y;
  if (x === y) return true;
  try {
    return dec(x).eq(dec(y));
  } catch {
    return false;
  }
}
