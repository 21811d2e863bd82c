import { Currency, resolveCurrency } from './currency';
import {
  Decimal,
  DecimalInput,
  dec,
  formatDecimal,
  fromScaledBigInt,
  parseDecimal,
  roundHalfUp,
  toScaledBigInt,
} from './decimal';
import { MoneyError } from './errors';

const MINOR_RE = /^-?\d+$/;

/**
 * An amount in one currency. Immutable. `amount` may be exact and unrounded (15000 × 0.005, a
 * prorated 16.333…): arithmetic never rounds, `round()` does, once, when the caller decides a line
 * is final. `format()`/`toMinorUnits()` refuse unrounded amounts rather than round silently.
 */
export class Money {
  readonly amount: Decimal;
  readonly currency: Currency;

  private constructor(amount: Decimal, currency: Currency) {
    this.amount = amount.isZero() ? new Decimal(0) : amount;
    this.currency = currency;
    Object.freeze(this);
  }

  static of(amount: DecimalInput, currency: string | Currency): Money {
    return new Money(dec(amount), resolveCurrency(currency));
  }

  static zero(currency: string | Currency): Money {
    return new Money(new Decimal(0), resolveCurrency(currency));
  }

  /** 12345n USD → 123.45; "-5" JPY → -5. */
  static fromMinorUnits(minor: bigint | string, currency: string | Currency): Money {
    const c = resolveCurrency(currency);
    let n: bigint;
    if (typeof minor === 'bigint') n = minor;
    else if (typeof minor === 'string' && MINOR_RE.test(minor)) n = BigInt(minor);
    else throw new MoneyError('invalid_decimal', `${String(minor)} is not an integer number of minor units`);
    return new Money(fromScaledBigInt(n, c.minorUnits), c);
  }

  /** Strict decimal string with at most the currency's minor units of decimals ("124.00", "-5"). */
  static parse(s: string, currency: string | Currency): Money {
    const c = resolveCurrency(currency);
    return new Money(parseDecimal(s, { maxScale: c.minorUnits }), c);
  }

  /** Exact sum; every item must be in `currency`. An empty list is zero. */
  static sum(items: readonly Money[], currency: string | Currency): Money {
    const c = resolveCurrency(currency);
    let total = new Decimal(0);
    for (const m of items) {
      assertSameCurrency(c, m);
      total = total.plus(m.amount);
    }
    return new Money(total, c);
  }

  plus(m: Money): Money {
    assertSameCurrency(this.currency, m);
    return new Money(this.amount.plus(m.amount), this.currency);
  }

  minus(m: Money): Money {
    assertSameCurrency(this.currency, m);
    return new Money(this.amount.minus(m.amount), this.currency);
  }

  /** Exact product (no rounding): quantity × unit price, amount × proration fraction… */
  times(factor: DecimalInput): Money {
    return new Money(this.amount.times(dec(factor)), this.currency);
  }

  negated(): Money {
    return new Money(this.amount.negated(), this.currency);
  }

  abs(): Money {
    return new Money(this.amount.abs(), this.currency);
  }

  isZero(): boolean {
    return this.amount.isZero();
  }

  isNegative(): boolean {
    return !this.amount.isZero() && this.amount.isNegative();
  }

  isPositive(): boolean {
    return !this.amount.isZero() && this.amount.isPositive();
  }

  /** Throws currency_mismatch across currencies (there is no order between USD and EUR). */
  compare(m: Money): -1 | 0 | 1 {
    assertSameCurrency(this.currency, m);
    return this.amount.comparedTo(m.amount) as -1 | 0 | 1;
  }

  /** Same currency and same value (1.5 equals 1.50); different currencies are simply not equal. */
  equals(m: Money): boolean {
    return m instanceof Money && m.currency.code === this.currency.code && this.amount.eq(m.amount);
  }

  /** Half-up (ties away from zero) to the currency's minor unit. */
  round(): Money {
    return this.isRounded() ? this : new Money(roundHalfUp(this.amount, this.currency.minorUnits), this.currency);
  }

  isRounded(): boolean {
    return this.amount.decimalPlaces() <= this.currency.minorUnits;
  }

  toMinorUnits(): bigint {
    this.assertRounded('toMinorUnits');
    return toScaledBigInt(this.amount, this.currency.minorUnits);
  }

  /** Exactly `minorUnits` decimals ("124.00", "5", "1.250"). */
  format(): string {
    this.assertRounded('format');
    return this.amount.toFixed(this.currency.minorUnits);
  }

  toJSON(): { amount: string; currency: string } {
    return {
      amount: this.isRounded() ? this.format() : formatDecimal(this.amount),
      currency: this.currency.code,
    };
  }

  /**
   * Splits the rounded amount into parts proportional to `weights`, in whole minor units, by the
   * largest remainder method: each part gets the floor of its exact share, then the leftover minor
   * units go one each to the parts with the largest remainders (ties to the earliest part). The
   * parts sum exactly to the rounded whole, each is within one minor unit of its exact share, and a
   * negative amount splits like its absolute value with the sign put back.
   */
  allocate(weights: readonly DecimalInput[]): Money[] {
    if (!Array.isArray(weights) || weights.length === 0) {
      throw new MoneyError('invalid_weights', 'allocate needs at least one weight');
    }
    const ws = weights.map((w, i) => {
      let d: Decimal;
      try {
        d = dec(w);
      } catch {
        throw new MoneyError('invalid_weights', `weight ${i} is not a valid decimal`);
      }
      if (d.isNegative() && !d.isZero()) throw new MoneyError('invalid_weights', `weight ${i} is negative`);
      return d;
    });
    // Scale every weight to an integer so the whole computation is exact bigint arithmetic.
    const scale = ws.reduce((max, d) => Math.max(max, d.decimalPlaces()), 0);
    const ints = ws.map((d) => toScaledBigInt(d, scale));
    const totalWeight = ints.reduce((a, b) => a + b, 0n);
    if (totalWeight === 0n) throw new MoneyError('invalid_weights', 'at least one weight must be positive');

    const whole = this.round().toMinorUnits();
    const sign = whole < 0n ? -1n : 1n;
    const magnitude = whole * sign;
    const parts = ints.map((w) => (magnitude * w) / totalWeight);
    const remainders = ints.map((w, i) => ({ i, r: (magnitude * w) % totalWeight }));
    let leftover = magnitude - parts.reduce((a, b) => a + b, 0n);
    remainders.sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
    for (const { i } of remainders) {
      if (leftover === 0n) break;
      parts[i] += 1n;
      leftover -= 1n;
    }
    return parts.map((p) => Money.fromMinorUnits(p * sign, this.currency));
  }

  private assertRounded(op: string): void {
    if (!this.isRounded()) {
      throw new MoneyError(
        'not_rounded',
        `${op}: ${formatDecimal(this.amount)} ${this.currency.code} has more than ${this.currency.minorUnits} decimals; round() it first`,
      );
    }
  }
}

function assertSameCurrency(expected: Currency, m: Money): void {
  if (!(m instanceof Money)) throw new MoneyError('currency_mismatch', 'expected a Money value');
  if (m.currency.code !== expected.code) {
    throw new MoneyError('currency_mismatch', `cannot combine ${m.currency.code} with ${expected.code}`);
  }
}
