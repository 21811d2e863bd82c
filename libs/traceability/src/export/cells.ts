import { dec, getCurrency } from '@closebook/money';

/** Digits after the decimal point of a currency's minor unit (2 when the code is unknown). */
export function minorUnits(currency: unknown): number {
  try {
    return getCurrency(String(currency)).minorUnits;
  } catch {
    return 2;
  }
}

/** Integer minor units (a bigint as text) → a decimal string in major units, exactly. */
export function minorToMajor(minor: string, currency: string): string {
  const units = minorUnits(currency);
  return dec(minor).div(dec(10).pow(units)).toFixed(units);
}

/** Money number format for a currency: `#,##0.00` for 2 minor units, `#,##0` for 0, `#,##0.000` for 3. */
export function moneyFormat(units: number): string {
  return units > 0 ? `#,##0.${'0'.repeat(units)}` : '#,##0';
}

export const DATETIME_FORMAT = 'yyyy-mm-dd hh:mm:ss';
export const DATE_FORMAT = 'yyyy-mm-dd';

/** Excel's limit on one cell's text. */
export const MAX_CELL_TEXT = 32_767;

// XML 1.0 refuses these control characters (and lone surrogates); a real spreadsheet application
// would refuse the whole file, so they become U+FFFD.
// eslint-disable-next-line no-control-regex
const UNSAFE = '[\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\uFFFE\\uFFFF]|[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])|(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]';
const XML_UNSAFE_ONE = new RegExp(UNSAFE);
const XML_UNSAFE_ALL = new RegExp(UNSAFE, 'g');

/** Text safe for a cell: XML-safe characters, at most 32,767 characters (cut with a marker). */
export function cellText(value: string): string {
  let s = XML_UNSAFE_ONE.test(value) ? value.replace(XML_UNSAFE_ALL, '\uFFFD') : value;
  if (s.length > MAX_CELL_TEXT) s = `${s.slice(0, MAX_CELL_TEXT - 20)}… [truncated]`;
  return s;
}

/**
 * A decimal string as an Excel number when the double keeps it exactly enough (≤ 15 significant
 * digits); otherwise the text itself, so nothing is silently rounded.
 */
export function decimalCell(value: string): number | string {
  const digits = value.replace(/^-/, '').replace('.', '').replace(/^0+/, '');
  if (digits.length <= 15) {
    const n = Number(value);
    if (Number.isFinite(n)) return n;
  }
  return value;
}
