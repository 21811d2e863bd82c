import { CURRENCY_CODES } from './currency';
import { MoneyError, getCurrency, isCurrencyCode } from './index';

describe('currencies', () => {
  it.each([
    ['USD', 2], ['EUR', 2], ['GBP', 2], ['SEK', 2], ['NOK', 2], ['DKK', 2], ['CHF', 2], ['CAD', 2],
    ['AUD', 2], ['NZD', 2], ['SGD', 2], ['HKD', 2], ['CNY', 2], ['INR', 2], ['BRL', 2], ['MXN', 2],
    ['PLN', 2], ['CZK', 2], ['HUF', 2], ['ZAR', 2],
    ['JPY', 0], ['KRW', 0], ['ISK', 0], ['CLP', 0], ['VND', 0], ['XOF', 0],
    ['KWD', 3], ['BHD', 3], ['JOD', 3], ['OMR', 3], ['TND', 3], ['IQD', 3], ['LYD', 3],
    ['CLF', 4], ['UYW', 4],
  ])('%s has %i minor units', (code, minorUnits) => {
    expect(getCurrency(code)).toEqual({ code, minorUnits });
    expect(isCurrencyCode(code)).toBe(true);
  });

  it('returns one frozen instance per code', () => {
    expect(getCurrency('USD')).toBe(getCurrency('USD'));
    expect(Object.isFrozen(getCurrency('USD'))).toBe(true);
  });

  it('only holds well-formed codes and exponents', () => {
    expect(CURRENCY_CODES.length).toBeGreaterThan(150);
    for (const code of CURRENCY_CODES) {
      expect(code).toMatch(/^[A-Z]{3}$/);
      expect([0, 2, 3, 4]).toContain(getCurrency(code).minorUnits);
    }
  });

  it.each(['usd', 'US', 'USDX', '', 'XXX', 'XAU', 'ABC', ' USD'])('does not know %j', (code) => {
    expect(isCurrencyCode(code)).toBe(false);
    expect(() => getCurrency(code)).toThrow(MoneyError);
    try {
      getCurrency(code);
    } catch (e) {
      expect((e as MoneyError).code).toBe('unknown_currency');
    }
  });

  it('is defensive about non-strings', () => {
    expect(isCurrencyCode(undefined as unknown as string)).toBe(false);
    expect(() => getCurrency(null as unknown as string)).toThrow(MoneyError);
  });
});
