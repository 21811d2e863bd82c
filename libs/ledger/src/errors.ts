import { MoneyError } from '@closebook/money';

/**
 * Bad input to the pure ledger core (a date that is not a date, an unbalanced entry, a line with
 * both sides...). It extends MoneyError, like the rating core's errors, so the one error filter
 * answers it as a 400 `{error: {code, message, field}}` while this code stays free of Nest.
 * Services raise the platform's NotFoundError / ConflictError / UnprocessableError for the rest.
 */
export class LedgerInputError extends MoneyError {
  constructor(code: string, message: string, field?: string) {
    super(code, message, field);
    this.name = 'LedgerInputError';
  }
}
