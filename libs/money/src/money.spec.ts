import { Decimal, Money, MoneyError, dec, getCurrency } from './index';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof MoneyError) return e.code;
    throw e;
  }
  return undefined;
}

const usd = (s: string) => Money.of(s, 'USD');
const fmt = (ms: Money[]) => ms.map((m) => m.format());

describe('Money: SPEC §10 worked examples', () => {
  it('$49 + 15,000 × $0.005 = 124.00', () => {
    const overage = usd('0.005').times(15000);
    expect(overage.toJSON()).toEqual({ amount: '75.00', currency: 'USD' });
    expect(overage.round().format()).toBe('75.00');
    const total = Money.sum([usd('49').round(), overage.round()], 'USD');
    expect(total.format()).toBe('124.00');
    expect(total.toMinorUnits()).toBe(12400n);
  });

  it('$99 + 9 × $15 = 234.00', () => {
    expect(usd('99').plus(usd('15').times(9)).round().format()).toBe('234.00');
  });

  it('$200 + (80 − 50) GB × $2 = 260.00', () => {
    const over = dec(80).minus(dec(5).times(10));
    expect(usd('20').times(10).plus(usd('2').times(over)).format()).toBe('260.00');
  });

  it('$199 + 3 × $150 + $100 = 749.00', () => {
    expect(Money.sum([usd('199'), usd('150').times(3), usd('100')], 'USD').format()).toBe('749.00');
  });
});

describe('Money: construction', () => {
  it('of / zero / fromMinorUnits / parse', () => {
    expect(Money.of(5, 'JPY').format()).toBe('5');
    expect(Money.of(12n, getCurrency('EUR')).format()).toBe('12.00');
    expect(Money.of(new Decimal('1.25'), 'KWD').format()).toBe('1.250');
    expect(Money.zero('USD').format()).toBe('0.00');
    expect(Money.zero('USD').isZero()).toBe(true);
    expect(Money.fromMinorUnits(12345n, 'USD').format()).toBe('123.45');
    expect(Money.fromMinorUnits('-5', 'USD').format()).toBe('-0.05');
    expect(Money.fromMinorUnits('1250', 'KWD').format()).toBe('1.250');
    expect(Money.fromMinorUnits(-7n, 'JPY').format()).toBe('-7');
    expect(Money.parse('124.00', 'USD').format()).toBe('124.00');
    expect(Money.parse('-16.3', 'USD').format()).toBe('-16.30');
    expect(Money.parse('1.125', 'BHD').format()).toBe('1.125');
  });

  it('parse is strict and bounded by the currency exponent', () => {
    expect(codeOf(() => Money.parse('1.001', 'USD'))).toBe('too_many_decimals');
    expect(codeOf(() => Money.parse('1.5', 'JPY'))).toBe('too_many_decimals');
    expect(codeOf(() => Money.parse('1.0001', 'KWD'))).toBe('too_many_decimals');
    for (const s of ['1e5', ' 1', '1.', '.5', '+1', 'NaN', '$1', '1 USD']) {
      expect(codeOf(() => Money.parse(s, 'USD'))).toBe('invalid_decimal');
    }
  });

  it('refuses floats and junk', () => {
    expect(codeOf(() => Money.of(1.5, 'USD'))).toBe('invalid_decimal');
    expect(codeOf(() => Money.of(NaN, 'USD'))).toBe('invalid_decimal');
    expect(codeOf(() => Money.of(0.1, 'USD'))).toBe('invalid_decimal');
    expect(codeOf(() => Money.fromMinorUnits('1.5', 'USD'))).toBe('invalid_decimal');
    expect(codeOf(() => Money.fromMinorUnits(5 as unknown as bigint, 'USD'))).toBe('invalid_decimal');
    expect(codeOf(() => usd('1').times(1.1))).toBe('invalid_decimal');
  });

  it('refuses unknown currencies and forged exponents', () => {
    expect(codeOf(() => Money.of(1, 'usd'))).toBe('unknown_currency');
    expect(codeOf(() => Money.zero('XYZ'))).toBe('unknown_currency');
    expect(codeOf(() => Money.of(1, { code: 'JPY', minorUnits: 2 }))).toBe('unknown_currency');
    expect(Money.of(1, { code: 'JPY', minorUnits: 0 }).currency).toBe(getCurrency('JPY'));
  });

  it('is immutable', () => {
    const m = usd('1');
    expect(Object.isFrozen(m)).toBe(true);
    m.plus(usd('2'));
    expect(m.format()).toBe('1.00');
  });
});

describe('Money: arithmetic', () => {
  it('0.1 + 0.2 is exactly 0.3', () => {
    expect(usd('0.1').plus(usd('0.2')).equals(usd('0.3'))).toBe(true);
    expect(usd('0.3').minus(usd('0.1')).format()).toBe('0.20');
  });

  it('times is exact and unrounded', () => {
    const m = usd('49').times(dec(1).div(3));
    expect(m.isRounded()).toBe(false);
    expect(m.toJSON().amount).toBe('16.' + '3'.repeat(58));
    expect(m.round().format()).toBe('16.33');
    expect(usd('0.005').times('15420').toJSON().amount).toBe('77.10');
    expect(usd('0.0049').times(3).toJSON().amount).toBe('0.0147');
  });

  it('refuses to mix currencies', () => {
    const eur = Money.of(1, 'EUR');
    expect(codeOf(() => usd('1').plus(eur))).toBe('currency_mismatch');
    expect(codeOf(() => usd('1').minus(eur))).toBe('currency_mismatch');
    expect(codeOf(() => usd('1').compare(eur))).toBe('currency_mismatch');
    expect(codeOf(() => Money.sum([usd('1'), eur], 'USD'))).toBe('currency_mismatch');
    expect(codeOf(() => Money.sum([eur], 'USD'))).toBe('currency_mismatch');
    expect(usd('1').equals(eur)).toBe(false);
  });

  it('sum of nothing is zero', () => {
    expect(Money.sum([], 'KWD').format()).toBe('0.000');
  });

  it('sign, comparison, equality', () => {
    expect(usd('-1').isNegative()).toBe(true);
    expect(usd('-1').isPositive()).toBe(false);
    expect(usd('1').isPositive()).toBe(true);
    expect(usd('0').isNegative()).toBe(false);
    expect(usd('0').isPositive()).toBe(false);
    expect(usd('-1').abs().format()).toBe('1.00');
    expect(usd('1').negated().format()).toBe('-1.00');
    expect(usd('1').compare(usd('2'))).toBe(-1);
    expect(usd('2').compare(usd('1'))).toBe(1);
    expect(usd('1.5').compare(usd('1.50'))).toBe(0);
    expect(usd('1.5').equals(usd('1.50'))).toBe(true);
  });

  it('never carries a negative zero', () => {
    const z = usd('0').negated();
    expect(z.isNegative()).toBe(false);
    expect(z.format()).toBe('0.00');
    expect(usd('-0.001').round().format()).toBe('0.00');
    expect(usd('-0.001').round().isNegative()).toBe(false);
    expect(usd('1').minus(usd('1')).toJSON()).toEqual({ amount: '0.00', currency: 'USD' });
  });
});

describe('Money: rounding', () => {
  it('rounds half-up to the minor unit', () => {
    expect(usd('16.335').round().format()).toBe('16.34');
    expect(usd('16.334999').round().format()).toBe('16.33');
    expect(usd('0.005').round().format()).toBe('0.01');
  });

  it('ties go away from zero: a credit mirrors its charge', () => {
    expect(usd('-16.335').round().format()).toBe('-16.34');
    expect(usd('-0.005').round().format()).toBe('-0.01');
    expect(usd('16.335').negated().round().equals(usd('16.335').round().negated())).toBe(true);
  });

  it('JPY has no minor unit', () => {
    expect(Money.of('1234.5', 'JPY').round().format()).toBe('1235');
    expect(Money.of('-1234.5', 'JPY').round().format()).toBe('-1235');
    expect(Money.of('1234.49', 'JPY').round().format()).toBe('1234');
    expect(Money.of('1234', 'JPY').toMinorUnits()).toBe(1234n);
  });

  it('KWD has three', () => {
    expect(Money.of('1.2345', 'KWD').round().format()).toBe('1.235');
    expect(Money.of('-1.2345', 'KWD').round().format()).toBe('-1.235');
    expect(Money.of('1.2344', 'KWD').round().format()).toBe('1.234');
    expect(Money.of('1.25', 'KWD').format()).toBe('1.250');
    expect(Money.of('1.25', 'KWD').toMinorUnits()).toBe(1250n);
  });

  it('isRounded looks at the value, not how it was written', () => {
    expect(usd('1.2').isRounded()).toBe(true);
    expect(usd('1.20000').isRounded()).toBe(true);
    expect(usd('1.201').isRounded()).toBe(false);
  });

  it('format and toMinorUnits never round silently', () => {
    expect(codeOf(() => usd('16.335').format())).toBe('not_rounded');
    expect(codeOf(() => usd('16.335').toMinorUnits())).toBe('not_rounded');
    expect(codeOf(() => Money.of('0.5', 'JPY').format())).toBe('not_rounded');
  });

  it('toJSON shows the exact amount when unrounded', () => {
    expect(usd('16.335').toJSON()).toEqual({ amount: '16.335', currency: 'USD' });
    expect(usd('5').toJSON()).toEqual({ amount: '5.00', currency: 'USD' });
    expect(JSON.stringify({ total: Money.of(5, 'JPY') })).toBe('{"total":{"amount":"5","currency":"JPY"}}');
  });
});

describe('Money: allocate', () => {
  it('splits evenly with the remainder to the earliest parts', () => {
    expect(fmt(usd('100').allocate([1, 1, 1]))).toEqual(['33.34', '33.33', '33.33']);
    expect(fmt(usd('0.05').allocate([1, 1, 1]))).toEqual(['0.02', '0.02', '0.01']);
  });

  it('goes by largest remainder, not by position', () => {
    // exact shares 0.1428…, 0.2857…, 0.5714… of 0.10 → 1.428, 2.857, 5.714 cents
    expect(fmt(usd('0.10').allocate([1, 2, 4]))).toEqual(['0.01', '0.03', '0.06']);
    expect(fmt(usd('10').allocate(['0.3', '0.7']))).toEqual(['3.00', '7.00']);
  });

  it('preserves the sign of a negative amount', () => {
    expect(fmt(usd('-100').allocate([1, 1, 1]))).toEqual(['-33.34', '-33.33', '-33.33']);
    expect(fmt(usd('-0.05').allocate([1, 1, 1]))).toEqual(['-0.02', '-0.02', '-0.01']);
  });

  it('gives zero-weight parts nothing', () => {
    expect(fmt(usd('1').allocate([0, 1, 0, 2]))).toEqual(['0.00', '0.33', '0.00', '0.67']);
  });

  it('splits the rounded amount', () => {
    const parts = usd('10.005').allocate([1, 1]);
    expect(fmt(parts)).toEqual(['5.01', '5.00']);
  });

  it('works in whole yen and fils', () => {
    expect(fmt(Money.of(100, 'JPY').allocate([1, 1, 1]))).toEqual(['34', '33', '33']);
    expect(fmt(Money.of(1, 'KWD').allocate([1, 1, 1]))).toEqual(['0.334', '0.333', '0.333']);
  });

  it('accepts decimal weights of any form', () => {
    expect(fmt(usd('1').allocate([dec('0.5'), '0.25', 1n, new Decimal('0.25')]))).toEqual([
      '0.25', '0.13', '0.50', '0.12', // 12.5 and 12.5 cents tie: the earlier part takes the cent
    ]);
  });

  it.each([
    [[] as never[]],
    [[0]],
    [[0, 0]],
    [[1, -1]],
    [['-0.5', 2]],
    [[1.5]],
    [['abc']],
    [[NaN]],
  ])('rejects weights %p', (weights) => {
    expect(codeOf(() => usd('1').allocate(weights))).toBe('invalid_weights');
  });
});

describe('MoneyError', () => {
  it('carries a code, an optional field and a name', () => {
    const e = new MoneyError('invalid_decimal', 'bad', 'amount');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('MoneyError');
    expect(e.code).toBe('invalid_decimal');
    expect(e.field).toBe('amount');
    expect(new MoneyError('not_rounded').message).toBe('not_rounded');
  });
});
