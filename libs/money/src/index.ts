export { Decimal, dec, parseDecimal, formatDecimal, roundHalfUp } from './decimal';
export type { DecimalInput, ParseDecimalOptions } from './decimal';
export { getCurrency, isCurrencyCode } from './currency';
export type { Currency } from './currency';
export { MoneyError } from './errors';
export type { MoneyErrorCode } from './errors';
export { Money } from './money';
