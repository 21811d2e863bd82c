/**
 * The codes this library raises. `MoneyError.code` is typed as `string` so callers may switch on it
 * without importing the union, but every error thrown here carries one of these.
 */
export type MoneyErrorCode =
  | 'invalid_decimal'
  | 'too_many_decimals'
  | 'negative_not_allowed'
  | 'invalid_scale'
  | 'unknown_currency'
  | 'currency_mismatch'
  | 'not_rounded'
  | 'invalid_weights';

/**
 * A money/decimal rule was broken. Pure (no HTTP status): the API layer maps it to a 400/422 with
 * `{code, message, field}`.
 */
export class MoneyError extends Error {
  readonly code: string;
  readonly field?: string;

  constructor(code: MoneyErrorCode | (string & {}), message?: string, field?: string) {
    super(message ?? code);
    this.name = 'MoneyError';
    this.code = code;
    if (field !== undefined) this.field = field;
  }
}
