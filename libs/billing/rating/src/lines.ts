/**
 * Invoice lines and totals (SPEC §4). A line's exact amount is rounded ONCE, half-up, to the
 * currency minor unit; subtotal = Σ rounded lines; tax = tax_rate × subtotal rounded half-up as its
 * own line; total = subtotal + tax.
 */
import { Currency, Money } from '@closebook/money';
import { RatingError } from './errors';
import { PriceModel, TierBreakdown } from './price-models';
import { ProrationInfo } from './proration';
import { Step, StepLog, Val } from './steps';
import { currencyOf, fmtMoney, parseNonNegative, PRICE_SCALE, str } from './util';

export type LineType =
  | 'base_fee'
  | 'seat'
  | 'addon'
  | 'usage_included'
  | 'usage_overage'
  | 'proration_credit'
  | 'proration_charge'
  | 'on_demand'
  | 'adjustment'
  | 'credit';

export const LINE_TYPES: readonly LineType[] = [
  'base_fee',
  'seat',
  'addon',
  'usage_included',
  'usage_overage',
  'proration_credit',
  'proration_charge',
  'on_demand',
  'adjustment',
  'credit',
];

export type LineMeta = Record<string, string | number | boolean | null>;

/** One invoice line, plain JSON (what invoicing stores). */
export interface RatedLine {
  /** Deterministic key, unique within the invoice (`usage_overage:api_calls:prod`). */
  line_key: string;
  type: LineType;
  product_key: string | null;
  price_key: string | null;
  /** Service period of the line, ISO, [start, end). */
  period_start: string;
  period_end: string;
  quantity: string;
  /** A single unit price when there is one; null when tiers/packages/flat amounts price the line. */
  unit_amount: string | null;
  tiers: TierBreakdown[] | null;
  /** Snapshot of the price model used, when one was. */
  price: PriceModel | null;
  /** Exact amount before the one rounding. */
  amount_exact: string;
  /** Rounded half-up to the currency minor unit, with exactly that many decimals ("124.00"). */
  amount: string;
  currency: string;
  description: string;
  proration: ProrationInfo | null;
  steps: Step[];
  meta: LineMeta;
}

export interface LineDraft {
  line_key: string;
  type: LineType;
  product_key?: string | null;
  price_key?: string | null;
  period_start: string;
  period_end: string;
  quantity: string;
  unit_amount?: string | null;
  tiers?: TierBreakdown[] | null;
  price?: PriceModel | null;
  description: string;
  proration?: ProrationInfo | null;
  meta?: LineMeta;
}

/**
 * Ends a line's step log: names the exact amount `amount_exact` (adding a copy step when the value
 * was produced under another name) and rounds it once into `amount`.
 */
export function finishLine(log: StepLog, exact: Val, currency: Currency, draft: LineDraft): RatedLine {
  const ex = exact.name === 'amount_exact' ? exact : log.add('input', { value: exact }, 'exact amount of the line', 'amount_exact');
  const rounded = log.add(
    'round',
    { amount: ex, minor_units: String(currency.minorUnits) },
    `rounded once, half-up, to the ${currency.code} minor unit`,
    'amount',
  );
  const money = Money.of(ex.value, currency).round();
  if (!money.amount.eq(rounded.value)) throw new RatingError('rounding_mismatch', 'internal: rounding disagreement');
  return {
    line_key: draft.line_key,
    type: draft.type,
    product_key: draft.product_key ?? null,
    price_key: draft.price_key ?? null,
    period_start: draft.period_start,
    period_end: draft.period_end,
    quantity: draft.quantity,
    unit_amount: draft.unit_amount ?? null,
    tiers: draft.tiers ?? null,
    price: draft.price ?? null,
    amount_exact: str(ex.value),
    amount: money.format(),
    currency: currency.code,
    description: draft.description,
    proration: draft.proration ?? null,
    steps: log.steps,
    meta: draft.meta ?? {},
  };
}

export interface TaxLine {
  type: 'tax';
  rate: string;
  taxable_amount: string;
  amount_exact: string;
  amount: string;
  currency: string;
  description: string;
  steps: Step[];
}

export interface InvoiceTotals {
  subtotal: string;
  /** Null when no tax rate applies to the customer. */
  tax: TaxLine | null;
  total: string;
}

/** Tax rates are fractions: "0.2" is 20%; 0 ≤ rate ≤ 1, up to 12 decimals. */
export function parseTaxRate(rate: string, field = 'tax_rate') {
  const r = parseNonNegative(rate, field, PRICE_SCALE);
  if (r.gt(1)) throw new RatingError('invalid_tax_rate', `${field} is a fraction (0.2 = 20%) and must not exceed 1`, field);
  return r;
}

export function totals(lines: readonly RatedLine[], currency: string | Currency, taxRate?: string | null): InvoiceTotals {
  const cur = currencyOf(currency);
  const seen = new Set<string>();
  for (const l of lines) {
    if (l.currency !== cur.code) throw new RatingError('currency_mismatch', `line ${l.line_key} is in ${l.currency}, not ${cur.code}`, 'lines');
    if (seen.has(l.line_key)) throw new RatingError('duplicate_line', `two lines share the key ${l.line_key}`, 'lines');
    seen.add(l.line_key);
  }
  const subtotal = Money.sum(
    lines.map((l) => Money.parse(l.amount, cur)),
    cur,
  );
  let tax: TaxLine | null = null;
  let total = subtotal;
  if (taxRate !== undefined && taxRate !== null) {
    const rate = parseTaxRate(taxRate);
    const log = new StepLog();
    const parts: Record<string, string> = {};
    lines.forEach((l, i) => (parts[`line_${i + 1}`] = l.amount));
    const sub = log.add('sum', parts, 'subtotal: sum of the rounded lines', 'subtotal');
    const exact = log.add('product', { subtotal: sub, tax_rate: rate }, `tax at ${str(rate.times(100))}%`, 'amount_exact');
    const rounded = log.add('round', { amount: exact, minor_units: String(cur.minorUnits) }, 'rounded once, half-up', 'amount');
    const taxMoney = Money.of(rounded.value, cur);
    tax = {
      type: 'tax',
      rate: str(rate),
      taxable_amount: subtotal.format(),
      amount_exact: str(exact.value),
      amount: taxMoney.format(),
      currency: cur.code,
      description: `Tax ${str(rate.times(100))}% on ${fmtMoney(subtotal.amount, cur)}`,
      steps: log.steps,
    };
    total = subtotal.plus(taxMoney);
  }
  return { subtotal: subtotal.format(), tax, total: total.format() };
}

/** Sum of rounded amounts of some lines, formatted ("0.00" for none). */
export function sumAmounts(lines: readonly RatedLine[], currency: string | Currency): string {
  const cur = currencyOf(currency);
  return Money.sum(lines.map((l) => Money.parse(l.amount, cur)), cur).format();
}
