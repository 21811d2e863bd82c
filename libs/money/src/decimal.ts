import { Decimal as DecimalJs } from 'decimal.js';
import { MoneyError } from './errors';

/**
 * The project's decimal type: a decimal.js clone with 60 significant digits, half-up rounding
 * (ties away from zero) and no exponent notation from toString(). Never use the global decimal.js.
 */
export const Decimal = DecimalJs.clone({
  precision: 60,
  rounding: DecimalJs.ROUND_HALF_UP,
  toExpNeg: -60,
  toExpPos: 60,
});
export type Decimal = InstanceType<typeof Decimal>;

export type DecimalInput = Decimal | string | bigint | number;

const DECIMAL_RE = /^-?\d+(\.\d+)?$/;

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'bigint') return `${v}n`;
  return String(v);
}

function invalid(v: unknown, field?: string): MoneyError {
  return new MoneyError('invalid_decimal', `${describe(v)} is not a valid decimal`, field);
}

/** -0 is a representation artefact, never a value: normalise it to 0. */
function normalizeZero(d: Decimal): Decimal {
  return d.isZero() && d.isNegative() ? new Decimal(0) : d;
}

function fromString(s: string, field?: string): Decimal {
  if (!DECIMAL_RE.test(s)) throw invalid(s, field);
  return normalizeZero(new Decimal(s));
}

/**
 * Any accepted input to a Decimal of the project's clone. Strings must be plain decimals
 * (`^-?\d+(\.\d+)?$`), numbers must be safe integers (a fractional number is how binary floats
 * sneak in, so it is refused), Decimals must be finite.
 */
export function dec(v: DecimalInput): Decimal {
  if (typeof v === 'string') return fromString(v);
  if (typeof v === 'bigint') return new Decimal(v.toString());
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw invalid(v);
    return new Decimal(Object.is(v, -0) ? 0 : v);
  }
  if (DecimalJs.isDecimal(v)) {
    const d = v as Decimal;
    if (!d.isFinite()) throw invalid(d);
    // All decimal.js clones share one prototype, so `instanceof` cannot tell them apart: re-home a
    // foreign instance so its arithmetic runs with this clone's precision and rounding.
    return normalizeZero(d.constructor === Decimal ? d : new Decimal(d));
  }
  throw invalid(v);
}

export interface ParseDecimalOptions {
  /** Maximum number of fractional digits as written ("1.50" has 2). */
  maxScale?: number;
  /** `false` refuses values below zero ("-0" is zero and accepted). Default true. */
  allowNegative?: boolean;
  /** Reported on the MoneyError (e.g. the request property being parsed). */
  field?: string;
}

function checkScale(scale: number, what: string): void {
  if (!Number.isSafeInteger(scale) || scale < 0) {
    throw new MoneyError('invalid_scale', `${what} must be a non-negative integer, got ${String(scale)}`);
  }
}

/** Strict parse of a plain decimal string (see `dec`), with optional scale and sign limits. */
export function parseDecimal(s: string, opts: ParseDecimalOptions = {}): Decimal {
  const { maxScale, allowNegative, field } = opts;
  if (typeof s !== 'string') throw invalid(s, field);
  if (maxScale !== undefined) checkScale(maxScale, 'maxScale');
  const d = fromString(s, field);
  if (maxScale !== undefined) {
    const dot = s.indexOf('.');
    const written = dot < 0 ? 0 : s.length - dot - 1;
    if (written > maxScale) {
      throw new MoneyError(
        'too_many_decimals',
        `${describe(s)} has ${written} decimal places; at most ${maxScale} allowed`,
        field,
      );
    }
  }
  if (allowNegative === false && d.isNegative()) {
    throw new MoneyError('negative_not_allowed', `${describe(s)} must not be negative`, field);
  }
  return d;
}

/** Plain notation, never an exponent, no trailing fractional zeros; -0 prints "0". */
export function formatDecimal(d: Decimal): string {
  if (!DecimalJs.isDecimal(d) || !d.isFinite()) throw invalid(d);
  // toFixed() without arguments is unrounded normal notation and drops the sign of zero.
  return d.toFixed();
}

/** Round half-up (ties away from zero: -16.335 → -16.34) to `scale` fractional digits. */
export function roundHalfUp(d: Decimal, scale: number): Decimal {
  checkScale(scale, 'scale');
  return normalizeZero(dec(d).toDecimalPlaces(scale, DecimalJs.ROUND_HALF_UP));
}

/** Exact integer `d × 10^scale` when d has at most `scale` decimals (internal). */
export function toScaledBigInt(d: Decimal, scale: number): bigint {
  return BigInt(d.toFixed(scale).replace('.', ''));
}

/** Exact `n × 10^-scale` (internal). */
export function fromScaledBigInt(n: bigint, scale: number): Decimal {
  return normalizeZero(new Decimal(`${n}e-${scale}`));
}
