import { Decimal as GlobalDecimal } from 'decimal.js';
import { Decimal, MoneyError, dec, formatDecimal, parseDecimal, roundHalfUp } from './index';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof MoneyError) return e.code;
    throw e;
  }
  return undefined;
}

describe('Decimal clone', () => {
  it('is configured for money: 60 digits, half-up, no exponent notation', () => {
    expect(Decimal.precision).toBe(60);
    expect(Decimal.rounding).toBe(GlobalDecimal.ROUND_HALF_UP);
    expect(new Decimal('1e-59').toString()).toBe('0.' + '0'.repeat(58) + '1');
    expect(new Decimal('1e59').toString()).toBe('1' + '0'.repeat(59));
  });

  it('does not change the global decimal.js configuration', () => {
    expect(GlobalDecimal.precision).toBe(20);
  });

  it('keeps 0.1 + 0.2 exact', () => {
    expect(dec('0.1').plus(dec('0.2')).eq(dec('0.3'))).toBe(true);
    expect(formatDecimal(dec('0.1').plus('0.2'))).toBe('0.3');
  });

  it('divides with 60 significant digits', () => {
    expect(formatDecimal(dec(49).div(3))).toBe('16.' + '3'.repeat(58));
  });
});

describe('dec', () => {
  it.each([
    ['15000', '15000'],
    ['0.005', '0.005'],
    ['-2.50', '-2.5'],
    ['007', '7'],
    ['-0', '0'],
    ['123456789012345678901234567890.123456789', '123456789012345678901234567890.123456789'],
  ])('parses %j', (input, out) => {
    expect(formatDecimal(dec(input))).toBe(out);
  });

  it('accepts safe integers, bigints and Decimals', () => {
    expect(formatDecimal(dec(42))).toBe('42');
    expect(formatDecimal(dec(-0))).toBe('0');
    expect(formatDecimal(dec(Number.MAX_SAFE_INTEGER))).toBe('9007199254740991');
    expect(formatDecimal(dec(12345678901234567890123n))).toBe('12345678901234567890123');
    const d = new Decimal('1.25');
    expect(dec(d)).toBe(d);
  });

  it('re-homes a global decimal.js instance into the clone', () => {
    const foreign = new GlobalDecimal('1');
    const d = dec(foreign);
    expect(d.constructor).toBe(Decimal);
    // The global clone has 20 digits of precision; ours has 60.
    expect(d.div(3).toString()).toBe('0.' + '3'.repeat(60));
  });

  it.each([
    '1e5', '1E5', ' 1', '1 ', '1.', '.5', '+1', '', '-', '1,000', '1_000', 'NaN', 'Infinity', '-Infinity',
    '0x10', '1.2.3', '--1', '١',
  ])('rejects the string %j', (s) => {
    expect(codeOf(() => dec(s))).toBe('invalid_decimal');
  });

  it.each([NaN, Infinity, -Infinity, 1.5, 0.1, -0.5, 2 ** 53, -(2 ** 53), 1e21])('rejects the number %p', (n) => {
    expect(codeOf(() => dec(n))).toBe('invalid_decimal');
  });

  it('rejects non-finite Decimals and values of the wrong type', () => {
    expect(codeOf(() => dec(new Decimal(NaN)))).toBe('invalid_decimal');
    expect(codeOf(() => dec(new Decimal(Infinity)))).toBe('invalid_decimal');
    expect(codeOf(() => dec(null as unknown as string))).toBe('invalid_decimal');
    expect(codeOf(() => dec(undefined as unknown as string))).toBe('invalid_decimal');
    expect(codeOf(() => dec({} as unknown as string))).toBe('invalid_decimal');
  });
});

describe('parseDecimal', () => {
  it('parses strict decimals', () => {
    expect(formatDecimal(parseDecimal('0.005'))).toBe('0.005');
    expect(formatDecimal(parseDecimal('-12.5'))).toBe('-12.5');
  });

  it('rejects what dec rejects', () => {
    for (const s of ['1e5', ' 1', '1.', '.5', '+1', 'NaN']) {
      expect(codeOf(() => parseDecimal(s))).toBe('invalid_decimal');
    }
    expect(codeOf(() => parseDecimal(1 as unknown as string))).toBe('invalid_decimal');
  });

  it('enforces maxScale on the digits as written', () => {
    expect(formatDecimal(parseDecimal('1.25', { maxScale: 2 }))).toBe('1.25');
    expect(formatDecimal(parseDecimal('125', { maxScale: 0 }))).toBe('125');
    expect(codeOf(() => parseDecimal('1.255', { maxScale: 2 }))).toBe('too_many_decimals');
    expect(codeOf(() => parseDecimal('1.250', { maxScale: 2 }))).toBe('too_many_decimals');
    expect(codeOf(() => parseDecimal('1.0', { maxScale: 0 }))).toBe('too_many_decimals');
  });

  it('refuses negatives only when allowNegative is false', () => {
    expect(formatDecimal(parseDecimal('-1', { allowNegative: true }))).toBe('-1');
    expect(formatDecimal(parseDecimal('-1'))).toBe('-1');
    expect(codeOf(() => parseDecimal('-0.01', { allowNegative: false }))).toBe('negative_not_allowed');
    expect(formatDecimal(parseDecimal('-0', { allowNegative: false }))).toBe('0');
    expect(formatDecimal(parseDecimal('0', { allowNegative: false }))).toBe('0');
  });

  it('reports the field', () => {
    expect.assertions(3);
    try {
      parseDecimal('abc', { field: 'unit_amount' });
    } catch (e) {
      expect(e).toBeInstanceOf(MoneyError);
      expect((e as MoneyError).field).toBe('unit_amount');
      expect((e as MoneyError).message).toContain('"abc"');
    }
  });

  it('rejects a nonsensical maxScale', () => {
    expect(codeOf(() => parseDecimal('1', { maxScale: -1 }))).toBe('invalid_scale');
    expect(codeOf(() => parseDecimal('1', { maxScale: 1.5 }))).toBe('invalid_scale');
  });
});

describe('formatDecimal', () => {
  it.each([
    ['15000', '15000'],
    ['0.005', '0.005'],
    ['-2.5', '-2.5'],
    ['1.2300', '1.23'],
    ['1e70', '1' + '0'.repeat(70)],
    ['1e-70', '0.' + '0'.repeat(69) + '1'],
  ])('prints %s as %s', (input, out) => {
    expect(formatDecimal(new Decimal(input))).toBe(out);
  });

  it('prints -0 as 0', () => {
    expect(formatDecimal(new Decimal('-0'))).toBe('0');
    expect(formatDecimal(new Decimal(0).negated())).toBe('0');
  });

  it('refuses NaN and Infinity', () => {
    expect(codeOf(() => formatDecimal(new Decimal(NaN)))).toBe('invalid_decimal');
    expect(codeOf(() => formatDecimal(new Decimal(-Infinity)))).toBe('invalid_decimal');
  });
});

describe('roundHalfUp', () => {
  it.each([
    ['16.335', 2, '16.34'],
    ['-16.335', 2, '-16.34'],
    ['16.3349999', 2, '16.33'],
    ['-16.3349999', 2, '-16.33'],
    ['0.5', 0, '1'],
    ['-0.5', 0, '-1'],
    ['2.5', 0, '3'],
    ['1.0005', 3, '1.001'],
    ['-0.004', 2, '0'],
    ['75', 2, '75'],
  ])('%s to %i places is %s', (input, scale, out) => {
    expect(formatDecimal(roundHalfUp(dec(input), scale))).toBe(out);
  });

  it('never returns -0', () => {
    const r = roundHalfUp(dec('-0.001'), 2);
    expect(r.isZero()).toBe(true);
    expect(r.isNegative()).toBe(false);
  });

  it('rejects a bad scale', () => {
    expect(codeOf(() => roundHalfUp(dec(1), -1))).toBe('invalid_scale');
  });
});
