/**
 * Internal helpers: decimal parsing with field paths, instants and whole UTC days, display
 * formatting for customer-readable descriptions. Not exported from the package index.
 */
import { Currency, Decimal, dec, formatDecimal, getCurrency, MoneyError } from '@closebook/money';
import { RatingError } from './errors';

export const ZERO: Decimal = dec(0);
export const ONE: Decimal = dec(1);
export const DAY_MS = 86_400_000;
/** Scale (fractional digits) at which non-terminating included quantities are rounded up. */
export const QUANTITY_SCALE = 12;
/** Max fractional digits of a unit price or tier bound (SPEC §1: "up to 12 places"). */
export const PRICE_SCALE = 12;

const DECIMAL_RE = /^-?\d+(\.\d+)?$/;

export function str(d: Decimal): string {
  return formatDecimal(d);
}

export function isDecimalString(v: unknown): v is string {
  return typeof v === 'string' && DECIMAL_RE.test(v);
}

export function scaleOf(s: string): number {
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

/** A non-negative decimal string (quantities, amounts in input documents) or a RatingError at `field`. */
export function parseNonNegative(v: unknown, field: string, maxScale?: number): Decimal {
  if (!isDecimalString(v)) {
    throw new RatingError('invalid_decimal', `${field} must be a decimal string like "12.5", got ${show(v)}`, field);
  }
  if (maxScale !== undefined && scaleOf(v) > maxScale) {
    throw new RatingError('too_many_decimals', `${field} has more than ${maxScale} decimal places`, field);
  }
  const d = dec(v);
  if (d.isNegative() && !d.isZero()) {
    throw new RatingError('negative_not_allowed', `${field} must not be negative`, field);
  }
  return d;
}

/** A signed decimal string or a RatingError at `field`. */
export function parseSigned(v: unknown, field: string, maxScale?: number): Decimal {
  if (!isDecimalString(v)) {
    throw new RatingError('invalid_decimal', `${field} must be a decimal string like "-12.5", got ${show(v)}`, field);
  }
  if (maxScale !== undefined && scaleOf(v) > maxScale) {
    throw new RatingError('too_many_decimals', `${field} has more than ${maxScale} decimal places`, field);
  }
  return dec(v);
}

export function parseCount(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new RatingError('invalid_count', `${field} must be a non-negative integer, got ${show(v)}`, field);
  }
  return v;
}

export function currencyOf(code: string | Currency, field = 'currency'): Currency {
  try {
    return getCurrency(typeof code === 'string' ? code : code?.code);
  } catch (e) {
    if (e instanceof MoneyError) throw new RatingError(e.code, e.message, field);
    throw e;
  }
}

export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === undefined) return 'nothing';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

// ---------------------------------------------------------------------------------------------
// Instants and whole UTC days

/** An instant: an ISO 8601 string with a zone (`Z` or an offset) or a Date. */
export type Instant = string | Date;

const ISO_RE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** The first instant after 9999-12-31: instants are accepted in [1970-01-01, 10000-01-01). */
const END_OF_9999_MS = Date.UTC(10000, 0, 1);

/**
 * A rating reads the same few instants (period bounds, segment starts) many times, and a page of
 * ratings reads the same period bounds for every subscription: parsing them (the pattern, then
 * Date.parse) was ~7 % of the rating core's CPU. Both directions are pure, so they are remembered,
 * in a small table that starts over when full.
 */
const MEMO_ENTRIES = 4096;
const msOfText = new Map<string, number>();
const textOfMs = new Map<number, string>();

function remember<K, V>(memo: Map<K, V>, k: K, v: V): V {
  if (memo.size >= MEMO_ENTRIES) memo.clear();
  memo.set(k, v);
  return v;
}

export function toMs(t: Instant, field = 'instant'): number {
  if (typeof t === 'string') {
    const known = msOfText.get(t);
    if (known !== undefined) return known;
  }
  let ms: number;
  if (t instanceof Date) ms = t.getTime();
  else if (typeof t === 'string' && ISO_RE.test(t)) ms = Date.parse(t);
  else ms = NaN;
  if (!Number.isFinite(ms)) {
    throw new RatingError('invalid_instant', `${field} must be an ISO 8601 UTC instant, got ${show(t)}`, field);
  }
  // Years 1970–9999, as bounds on the instant itself.
  if (ms < 0 || ms >= END_OF_9999_MS) {
    throw new RatingError('invalid_instant', `${field} is out of range (1970–9999)`, field);
  }
  return typeof t === 'string' ? remember(msOfText, t, ms) : ms;
}

export function iso(ms: number): string {
  return textOfMs.get(ms) ?? remember(textOfMs, ms, new Date(ms).toISOString());
}

export function startOfUtcDay(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

export function isUtcMidnight(ms: number): boolean {
  return ms % DAY_MS === 0;
}

export function wholeDays(fromMs: number, toMs_: number): number {
  return Math.round((toMs_ - fromMs) / DAY_MS);
}

/** "2024-02-01" for the first day of [start, end) and "2024-02-29" for its last day. */
export function dayLabel(ms: number): string {
  return iso(ms).slice(0, 10);
}

export function periodLabel(startMs: number, endMs: number): string {
  const last = endMs - DAY_MS;
  return last <= startMs ? dayLabel(startMs) : `${dayLabel(startMs)} – ${dayLabel(last)}`;
}

// ---------------------------------------------------------------------------------------------
// Display formatting (descriptions only: steps and amounts always carry exact decimals)

const SYMBOLS: Readonly<Record<string, string>> = { USD: '$', EUR: '€', GBP: '£', JPY: '¥' };

function group(intPart: string): string {
  return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** 15000 → "15,000"; 0.5 → "0.5"; more than 6 decimals → rounded to 6 with a leading "~". */
export function fmtQty(d: Decimal): string {
  const approx = d.decimalPlaces() > 6;
  const v = approx ? d.toDecimalPlaces(6, Decimal.ROUND_HALF_UP) : d;
  const neg = v.isNegative() && !v.isZero();
  const [i, f] = v.abs().toFixed().split('.');
  return `${approx ? '~' : ''}${neg ? '−' : ''}${group(i)}${f ? `.${f}` : ''}`;
}

/**
 * A price for display: at least the currency's minor-unit decimals, more when the price has them
 * ($15.00, $0.005, $0.0001); the currency symbol for USD/EUR/GBP/JPY, else the code ("SEK 15.00").
 */
export function fmtPrice(d: Decimal, currency: Currency): string {
  const places = Math.max(currency.minorUnits, d.decimalPlaces());
  const neg = d.isNegative() && !d.isZero();
  const [i, f] = d.abs().toFixed(places).split('.');
  const body = `${group(i)}${f ? `.${f}` : ''}`;
  const sym = SYMBOLS[currency.code];
  return `${neg ? '−' : ''}${sym ?? `${currency.code} `}${body}`;
}

/** A rounded money amount for display ("$124.00", "−$16.33"). */
export function fmtMoney(d: Decimal, currency: Currency): string {
  return fmtPrice(d.toDecimalPlaces(currency.minorUnits, Decimal.ROUND_HALF_UP), currency);
}

/** Deterministic, locale-independent string order (never localeCompare). */
export function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sumDec(ds: readonly Decimal[]): Decimal {
  return ds.reduce((a, b) => a.plus(b), ZERO);
}
