/**
 * Human-readable rendering of stored computation steps (pure: no I/O). The steps themselves are the
 * rating core's (`@closebook/rating` `Step`), stored with each invoice line exactly as rated; this
 * only says in words what each one did, with the numbers it used. It never recomputes a rule:
 * `replayLine` does the arithmetic check, and unknown step names fall back to the step's own note.
 */
import { Decimal, dec, type Currency } from '@closebook/money';
import type { Step } from '@closebook/rating';

const SYMBOLS: Record<string, string> = { USD: '$', EUR: '€', GBP: '£', JPY: '¥' };

function group(intPart: string): string {
  return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function parse(v: string | null | undefined): Decimal | null {
  if (typeof v !== 'string') return null;
  try {
    return dec(v);
  } catch {
    return null;
  }
}

/** A quantity for people: thousands separators, up to 6 decimals (more: rounded, prefixed `~`). */
export function formatQuantity(v: string | null | undefined): string {
  const d = parse(v);
  if (!d) return String(v);
  const approx = d.decimalPlaces() > 6;
  const r = approx ? d.toDecimalPlaces(6, Decimal.ROUND_HALF_UP) : d;
  const neg = r.isNegative() && !r.isZero();
  const [i, f] = r.abs().toFixed().split('.');
  return `${approx ? '~' : ''}${neg ? '−' : ''}${group(i)}${f ? `.${f}` : ''}`;
}

/** A price or amount: at least the currency's minor-unit decimals, more when it has them (long fractions: `~`, 6 decimals). */
export function formatPrice(v: string | null | undefined, currency: Currency): string {
  const d = parse(v);
  if (!d) return String(v);
  const approx = d.decimalPlaces() > 6;
  const r = approx ? d.toDecimalPlaces(6, Decimal.ROUND_HALF_UP) : d;
  const places = Math.max(currency.minorUnits, r.decimalPlaces());
  const neg = r.isNegative() && !r.isZero();
  const [i, f] = r.abs().toFixed(places).split('.');
  const sym = SYMBOLS[currency.code] ?? `${currency.code} `;
  return `${approx ? '~' : ''}${neg ? '−' : ''}${sym}${group(i)}${f ? `.${f}` : ''}`;
}

/** YYYY-MM of an ISO instant found in a text ("carried from 2027-08-01" → "2027-08"). */
function monthIn(text: string, after: string): string | null {
  const m = new RegExp(`${after} (\\d{4}-\\d{2})-\\d{2}`).exec(text);
  return m ? m[1] : null;
}

export interface StepContext {
  currency: Currency;
  /** Display unit of the line's dimension ("calls", "GB"), when it has one. */
  unit?: string | null;
}

interface GrantInfo {
  kind: 'rollover' | 'period';
  carriedFrom: string | null;
}

/** Renders every step of a line, in order, threading what earlier steps said about grants. */
export function renderSteps(steps: readonly Step[], ctx: StepContext): string[] {
  const grants = new Map<string, GrantInfo>();
  const drawn = new Map<string, Decimal>();
  return steps.map((s) => {
    try {
      return renderStep(s, ctx, grants, drawn);
    } catch {
      return `${s?.note ?? s?.op}: ${s?.result}`;
    }
  });
}

function renderStep(s: Step, ctx: StepContext, grants: Map<string, GrantInfo>, drawn: Map<string, Decimal>): string {
  const q = formatQuantity;
  const p = (v: string | null | undefined) => formatPrice(v, ctx.currency);
  const unit = ctx.unit ? ` ${ctx.unit}` : '';
  const name = s.name ?? '';
  const i = s.inputs ?? {};
  const r = s.result;
  let m: RegExpExecArray | null;

  if (s.op === 'round') return `rounded half-up to ${i.minor_units} decimals: ${formatQuantity(i.amount)} → ${r}`;
  if (s.op === 'round_up') return `${s.note}: ${q(i.value)} → ${q(r)}`;
  if (s.op === 'prorate') {
    return `proration ${i.days}/${i.days_in_period} days: ${p(i.amount)} × ${i.days} ÷ ${i.days_in_period} = ${p(r)}`;
  }
  if (name === 'usage') return `usage ${q(r)}${unit} (${s.note})`;
  if ((m = /^segment_(\d+)_cycle_allowance$/.exec(name))) return `segment ${m[1]} allowance per cycle: ${s.note.replace(/ per cycle$/, '')} = ${q(r)}${unit}`;
  if ((m = /^segment_(\d+)_allowance_days$/.exec(name))) {
    const frac = /(\d+\/\d+ days)/.exec(s.note)?.[1];
    return `${s.note.replace(/: \d+\/\d+ days$/, '')}: ${q(i.cycle_allowance)} × ${q(i.days)} days = ${q(r)} allowance-days${frac ? ` (proration ${frac})` : ''}`;
  }
  if (name === 'period_allowance' && s.op === 'product') return `period allowance: ${s.note.replace(/ per cycle$/, '')} = ${q(r)}${unit}`;
  if (name === 'allowance_days') return `allowance-days over the period: ${Object.values(i).map(q).join(' + ')} = ${q(r)}`;
  if (name === 'prorata_allowance') return `prorata allowance: ${q(i.dividend)} ÷ ${q(i.divisor)} days = ${q(r)}${unit}`;
  if ((m = /^floor_(\d+)$/.exec(name))) return `upgrade floor (allowance had the upgrade not happened): ${q(i.dividend)} ÷ ${q(i.divisor)} = ${q(r)}${unit}`;
  if (name === 'period_allowance_exact') return `period allowance: the larger of ${Object.entries(i).map(([k, v]) => `${k} ${q(v)}`).join(', ')} = ${q(r)}${unit}`;
  if ((m = /^grant_(\d+)_available$/.exec(name))) {
    const rollover = /^rollover grant/.test(s.note);
    const carriedFrom = monthIn(s.note, 'carried from');
    grants.set(m[1], { kind: rollover ? 'rollover' : 'period', carriedFrom });
    return rollover
      ? `rollover grant${carriedFrom ? ` carried from ${carriedFrom}` : ''}: ${q(r)}${unit} available`
      : `period allowance grant: ${q(r)}${unit} available`;
  }
  if ((m = /^grant_(\d+)_drawn$/.exec(name))) {
    const g = grants.get(m[1]);
    drawn.set(m[1], dec(r));
    const from = g?.kind === 'rollover' ? `the rollover${g.carriedFrom ? ` from ${g.carriedFrom}` : ''}` : "the period's own allowance";
    return `allowance drawn from ${from}: min(${q(i.usage_left)} left, ${q(i.available)} available) = ${q(r)}${unit}`;
  }
  if (/^usage_left_\d+$/.test(name)) return `usage not yet covered: ${q(i.minuend)} − ${q(i.subtrahend)} = ${q(r)}${unit}`;
  if (name === 'included_used') {
    const rolled: string[] = [];
    for (const [n, d] of drawn) {
      const g = grants.get(n);
      if (g?.kind === 'rollover' && d.gt(0)) rolled.push(`${q(d.toFixed())} rolled over${g.carriedFrom ? ` from ${g.carriedFrom}` : ''}`);
    }
    return `allowance drawn ${q(r)}${unit}${rolled.length ? ` (incl. ${rolled.join(', ')})` : ''}`;
  }
  if (name === 'overage_quantity') return `overage: usage ${q(i.minuend)} − allowance drawn ${q(i.subtrahend)} = ${q(r)}${unit}`;
  if (name === 'billable_quantity' && s.op === 'overage_mode') {
    return i.mode === 'block' ? `capped free tier: ${q(i.quantity)}${unit} above the allowance recorded, 0 billed` : `billable overage ${q(r)}${unit}`;
  }
  if (s.op === 'tier_quantity') return `${s.note}: ${q(r)}${unit} in (${q(i.from)}, ${i.to === null ? '∞' : q(i.to)}]`;
  if (s.op === 'tier_amount') {
    const flat = i.flat_amount && !dec(i.flat_amount).isZero() ? ` + flat ${p(i.flat_amount)}` : '';
    return `${s.note}: ${q(i.quantity)} × ${p(i.unit_amount)}${flat} = ${p(r)}`;
  }
  if (s.op === 'ceil_div') return `packages started: ceil(${q(i.quantity)} ÷ ${q(i.package_size)}) = ${q(r)}`;
  if (s.op === 'if_positive') return `${s.note}: ${p(r)}`;
  if (s.op === 'negate') return `${s.note}: −(${p(i.value)}) = ${p(r)}`;
  if (name === 'amount_exact' && s.op === 'product' && 'unit_amount' in i) {
    return `amount: ${q(i.quantity)}${unit} × ${p(i.unit_amount)} = ${formatQuantity(r)} (exact)`;
  }
  if (name === 'amount_exact') return `exact amount ${formatQuantity(r)} (${s.note})`;
  if (s.op === 'product' && 'unit_amount' in i && 'quantity' in i) return `${q(i.quantity)}${unit} × ${p(i.unit_amount)} = ${formatQuantity(r)}`;
  if (s.op === 'input') return `${s.note}: ${q(r)}`;
  if (s.op === 'difference') return `${s.note}: ${q(i.minuend)} − ${q(i.subtrahend)} = ${q(r)}`;
  if (s.op === 'divide') return `${s.note}: ${q(i.dividend)} ÷ ${q(i.divisor)} = ${q(r)}`;
  if (s.op === 'sum' || s.op === 'product' || s.op === 'min' || s.op === 'max') {
    const sign = { sum: ' + ', product: ' × ', min: ', ', max: ', ' }[s.op];
    const body = Object.values(i).map(q).join(sign);
    return `${s.note}: ${s.op === 'min' || s.op === 'max' ? `${s.op}(${body})` : body} = ${q(r)}`;
  }
  if (s.op === 'overage_mode') return `${s.note}: ${q(r)}`;
  return `${s.note}: ${q(r)}`;
}
