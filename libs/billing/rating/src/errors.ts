import { MoneyError } from '@closebook/money';

/** One validation finding: a machine-readable code, a readable message and the JSON path at fault. */
export interface Issue {
  code: string;
  message: string;
  /** Path into the validated value, e.g. `tiers[1].up_to` (indexes are 0-based). */
  field: string;
}

/**
 * A rating rule was broken by the input (bad price model, overlapping segments, unpriced usage…).
 * It extends MoneyError so the one domain-error filter maps both to `{error: {code, message, field}}`.
 * `issues` carries every finding when a validation produced several.
 */
export class RatingError extends MoneyError {
  readonly issues: Issue[];

  constructor(code: string, message: string, field?: string, issues?: Issue[]) {
    super(code, message, field);
    this.name = 'RatingError';
    this.issues = issues ?? [{ code, message, field: field ?? '' }];
  }

  static fromIssues(issues: Issue[]): RatingError {
    const first = issues[0];
    return new RatingError(first.code, first.message, first.field, issues);
  }
}
