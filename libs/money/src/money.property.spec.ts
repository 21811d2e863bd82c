import fc from 'fast-check';
import { CURRENCY_CODES } from './currency';
import { Currency, Decimal, Money, dec, formatDecimal, getCurrency, parseDecimal } from './index';

// ---- arbitraries -------------------------------------------------------------------------------

const currencyArb: fc.Arbitrary<Currency> = fc.constantFrom(...CURRENCY_CODES).map(getCurrency);

/** `n × 10^-scale` as a plain decimal string (independent of the library under test). */
function scaledToString(n: bigint, scale: number): string {
  const neg = n < 0n;
  const digits = (neg ? -n : n).toString().padStart(scale + 1, '0');
  const body = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return neg ? `-${body}` : body;
}

const bigAmountArb = fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n });

/** An exact amount with up to 12 decimals, as (integer, scale). */
const scaledArb = fc.record({ n: bigAmountArb, scale: fc.integer({ min: 0, max: 12 }) });

/** Any money, exact (possibly unrounded). */
const exactMoneyArb = fc
  .tuple(scaledArb, currencyArb)
  .map(([{ n, scale }, c]) => Money.of(scaledToString(n, scale), c));

/** A money already rounded to its currency's minor unit. */
const roundedMoneyArb = fc.tuple(bigAmountArb, currencyArb).map(([n, c]) => Money.fromMinorUnits(n, c));

/** Canonical decimal strings: no leading zeros, no trailing fractional zeros, no "-0". */
const canonicalDecimalArb = fc
  .tuple(
    fc.bigInt({ min: 0n, max: 10n ** 30n }),
    fc.option(fc.stringMatching(/^\d{0,15}[1-9]$/), { nil: undefined }),
  )
  .map(([int, frac]) => (frac === undefined ? `${int}` : `${int}.${frac}`))
  .chain((s) => fc.boolean().map((neg) => (neg && s !== '0' ? `-${s}` : s)));

/** Any string dec() must accept, canonical or not ("007.50", "-0"). */
const validDecimalArb = fc.stringMatching(/^-?\d{1,20}(\.\d{1,20})?$/);

const weightArb = fc.oneof(
  fc.integer({ min: 0, max: 1000 }),
  fc.bigInt({ min: 0n, max: 10n ** 12n }),
  fc.tuple(fc.integer({ min: 0, max: 10 ** 6 }), fc.integer({ min: 0, max: 6 })).map(([n, s]) =>
    scaledToString(BigInt(n), s),
  ),
);
const weightsArb = fc
  .array(weightArb, { minLength: 1, maxLength: 12 })
  .filter((ws) => ws.some((w) => dec(w).gt(0)));

const unitOf = (c: Currency): Decimal => new Decimal(10).pow(-c.minorUnits);

// ---- rounding ----------------------------------------------------------------------------------

describe('rounding laws', () => {
  it('is idempotent and lands on the minor unit', () => {
    fc.assert(
      fc.property(exactMoneyArb, (m) => {
        const r = m.round();
        expect(r.isRounded()).toBe(true);
        expect(r.round().equals(r)).toBe(true);
        expect(r.round().format()).toBe(r.format());
      }),
    );
  });

  it('moves an amount by at most half a minor unit', () => {
    fc.assert(
      fc.property(exactMoneyArb, (m) => {
        const moved = m.round().minus(m).amount.abs();
        expect(moved.lte(unitOf(m.currency).div(2))).toBe(true);
      }),
    );
  });

  it('agrees with an integer reference implementation of half-up, ties away from zero', () => {
    fc.assert(
      fc.property(scaledArb, currencyArb, ({ n, scale }, c) => {
        let expected = n;
        if (scale > c.minorUnits) {
          const div = 10n ** BigInt(scale - c.minorUnits);
          const abs = n < 0n ? -n : n;
          let q = abs / div;
          if (2n * (abs % div) >= div) q += 1n;
          expected = n < 0n ? -q : q;
        } else {
          expected = n * 10n ** BigInt(c.minorUnits - scale);
        }
        expect(Money.of(scaledToString(n, scale), c).round().toMinorUnits()).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('is symmetric: a credit rounds to minus its charge', () => {
    fc.assert(
      fc.property(exactMoneyArb, (m) => {
        expect(m.negated().round().equals(m.round().negated())).toBe(true);
      }),
    );
  });

  it('rounds exact ties away from zero', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }), currencyArb, (n, c) => {
        // n minor units and a half
        const half = Money.fromMinorUnits(n, c).plus(Money.of(5, c).times(unitOf(c).div(10)));
        const expected = n >= 0n ? n + 1n : n;
        expect(half.round().toMinorUnits()).toBe(expected);
      }),
    );
  });
});

// ---- allocation --------------------------------------------------------------------------------

describe('allocation laws', () => {
  it('sums exactly to the rounded whole, each part within one minor unit of its exact share', () => {
    fc.assert(
      fc.property(exactMoneyArb, weightsArb, (m, weights) => {
        const whole = m.round();
        const parts = m.allocate(weights);
        expect(parts).toHaveLength(weights.length);
        expect(Money.sum(parts, m.currency).equals(whole)).toBe(true);

        const ws = weights.map(dec);
        const total = ws.reduce((a, b) => a.plus(b), new Decimal(0));
        const unit = unitOf(m.currency);
        parts.forEach((p, i) => {
          expect(p.isRounded()).toBe(true);
          expect(p.currency).toBe(m.currency);
          const exact = whole.amount.times(ws[i]).div(total);
          expect(p.amount.minus(exact).abs().lt(unit)).toBe(true);
          if (ws[i].isZero()) expect(p.isZero()).toBe(true);
          if (!p.isZero()) expect(p.isNegative()).toBe(whole.isNegative());
        });
      }),
      { numRuns: 1000 },
    );
  });

  it('splits a negative amount as the mirror of its absolute value', () => {
    fc.assert(
      fc.property(roundedMoneyArb, weightsArb, (m, weights) => {
        const a = m.negated().allocate(weights).map((p) => p.toMinorUnits());
        const b = m.allocate(weights).map((p) => -p.toMinorUnits());
        expect(a).toEqual(b);
      }),
    );
  });

  it('is exact for equal weights: parts differ by at most one minor unit, larger ones first', () => {
    fc.assert(
      fc.property(roundedMoneyArb, fc.integer({ min: 1, max: 20 }), (m, k) => {
        const parts = m.abs().allocate(Array.from({ length: k }, () => 1)).map((p) => p.toMinorUnits());
        for (let i = 1; i < parts.length; i++) {
          expect(parts[i - 1] >= parts[i]).toBe(true);
          expect(parts[0] - parts[i] <= 1n).toBe(true);
        }
      }),
    );
  });
});

// ---- parsing and formatting ---------------------------------------------------------------------

describe('parse / format laws', () => {
  it('parse ∘ format is the identity on rounded amounts, for every currency', () => {
    fc.assert(
      fc.property(roundedMoneyArb, (m) => {
        const s = m.format();
        const back = Money.parse(s, m.currency);
        expect(back.equals(m)).toBe(true);
        expect(back.format()).toBe(s);
        expect(Money.parse(m.toJSON().amount, m.toJSON().currency).equals(m)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('every currency round-trips its own smallest and largest formatted values', () => {
    for (const code of CURRENCY_CODES) {
      for (const n of [0n, 1n, -1n, 10n ** 18n - 1n]) {
        const m = Money.fromMinorUnits(n, code);
        expect(Money.parse(m.format(), code).toMinorUnits()).toBe(n);
      }
    }
  });

  it('format ∘ parse is the identity on canonical decimal strings', () => {
    fc.assert(
      fc.property(canonicalDecimalArb, (s) => {
        expect(formatDecimal(parseDecimal(s))).toBe(s);
        expect(formatDecimal(dec(s))).toBe(s);
      }),
      { numRuns: 1000 },
    );
  });

  it('format ∘ parse is the identity on money strings with exactly the minor units', () => {
    fc.assert(
      fc.property(bigAmountArb, currencyArb, (n, c) => {
        const s = scaledToString(n, c.minorUnits);
        expect(Money.parse(s, c).format()).toBe(s);
      }),
    );
  });

  it('parsing preserves the value of any valid string, canonical or not', () => {
    fc.assert(
      fc.property(validDecimalArb, (s) => {
        const d = parseDecimal(s);
        const [int, frac = ''] = s.replace('-', '').split('.');
        const asInt = BigInt(int + frac) * (s.startsWith('-') ? -1n : 1n);
        expect(formatDecimal(d)).toBe(formatDecimal(new Decimal(scaledToString(asInt, frac.length))));
        expect(parseDecimal(formatDecimal(d)).eq(d)).toBe(true);
      }),
    );
  });

  it('rejects any string with characters outside the strict grammar', () => {
    fc.assert(
      fc.property(validDecimalArb, fc.constantFrom(' ', '+', 'e', 'E', ',', '_', '\n', 'x'), fc.nat(), (s, ch, at) => {
        const i = at % (s.length + 1);
        const bad = s.slice(0, i) + ch + s.slice(i);
        expect(() => parseDecimal(bad)).toThrow(expect.objectContaining({ code: 'invalid_decimal' }));
      }),
    );
  });

  it('rejects fractional numbers', () => {
    fc.assert(
      fc.property(
        fc.double({ noNaN: true }).filter((x) => !Number.isSafeInteger(x)),
        (x) => {
          expect(() => dec(x)).toThrow(expect.objectContaining({ code: 'invalid_decimal' }));
        },
      ),
    );
  });

  it('toJSON is exact: it never loses digits of an unrounded amount', () => {
    fc.assert(
      fc.property(exactMoneyArb, (m) => {
        expect(dec(m.toJSON().amount).eq(m.amount)).toBe(true);
      }),
    );
  });
});

// ---- arithmetic --------------------------------------------------------------------------------

describe('arithmetic laws', () => {
  const pairArb = fc
    .tuple(scaledArb, scaledArb, currencyArb)
    .map(([a, b, c]) => [Money.of(scaledToString(a.n, a.scale), c), Money.of(scaledToString(b.n, b.scale), c)] as const);

  it('plus and minus are inverse', () => {
    fc.assert(
      fc.property(pairArb, ([a, b]) => {
        expect(a.plus(b).minus(b).equals(a)).toBe(true);
        expect(a.minus(b).plus(b).equals(a)).toBe(true);
        expect(a.minus(a).isZero()).toBe(true);
        expect(a.plus(b.negated()).equals(a.minus(b))).toBe(true);
      }),
    );
  });

  it('plus is commutative and compare is consistent with minus', () => {
    fc.assert(
      fc.property(pairArb, ([a, b]) => {
        expect(a.plus(b).equals(b.plus(a))).toBe(true);
        const d = a.minus(b);
        expect(a.compare(b)).toBe(d.isZero() ? 0 : d.isNegative() ? -1 : 1);
        expect(a.compare(b)).toBe(-b.compare(a) || 0);
      }),
    );
  });

  it('sum of rounded amounts is rounded and exact', () => {
    fc.assert(
      fc.property(currencyArb, fc.array(bigAmountArb, { maxLength: 20 }), (c, ns) => {
        const total = Money.sum(ns.map((n) => Money.fromMinorUnits(n, c)), c);
        expect(total.isRounded()).toBe(true);
        expect(total.toMinorUnits()).toBe(ns.reduce((a, b) => a + b, 0n));
      }),
    );
  });

  it('times by an integer matches bigint multiplication', () => {
    fc.assert(
      fc.property(roundedMoneyArb, fc.bigInt({ min: -(10n ** 9n), max: 10n ** 9n }), (m, k) => {
        expect(m.times(k).toMinorUnits()).toBe(m.toMinorUnits() * k);
      }),
    );
  });

  it('fromMinorUnits ∘ toMinorUnits is the identity', () => {
    fc.assert(
      fc.property(roundedMoneyArb, (m) => {
        const back = Money.fromMinorUnits(m.toMinorUnits(), m.currency);
        expect(back.equals(m)).toBe(true);
        expect(back.format()).toBe(m.format());
      }),
    );
    fc.assert(
      fc.property(bigAmountArb, currencyArb, (n, c) => {
        expect(Money.fromMinorUnits(n, c).toMinorUnits()).toBe(n);
        expect(Money.fromMinorUnits(n.toString(), c).toMinorUnits()).toBe(n);
      }),
    );
  });
});
