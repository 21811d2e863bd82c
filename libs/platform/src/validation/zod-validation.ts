import { z } from 'zod';
import { ValidationError } from '../errors/domain-error';

/** `items[2].price` from a zod path. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

function describe(issue: z.core.$ZodIssue): { field: string; message: string; code: string } {
  const base = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0];
    const field = base ? `${base}.${key}` : key;
    return { field, code: 'unknown_field', message: `Unknown field "${field}"` };
  }
  if (issue.input === undefined && base) {
    return { field: base, code: 'missing_field', message: `${base} is required` };
  }
  if (issue.code === 'invalid_type') {
    return { field: base, code: 'invalid_type', message: `${base || 'body'} must be ${issue.expected}` };
  }
  return { field: base, code: 'invalid_value', message: `${base || 'body'}: ${issue.message}` };
}

/** Parses `value` or throws a 400 naming the first field at fault (all issues in details). */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, where = 'body'): z.infer<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues.map(describe);
  const first = issues[0];
  throw new ValidationError(first.code, first.message, first.field || undefined, {
    location: where,
    issues: issues.map((i) => ({ field: i.field, code: i.code, message: i.message })),
  });
}

/** Decimal strings in JSON (amounts, quantities, rates): never JSON numbers, so no float ever enters. */
export const decimalString = (opts: { maxScale?: number; allowNegative?: boolean } = {}) =>
  z
    .string()
    .regex(opts.allowNegative ? /^-?\d+(\.\d+)?$/ : /^\d+(\.\d+)?$/, {
      message: `must be a ${opts.allowNegative ? '' : 'non-negative '}decimal string such as "12.50"`,
    })
    .refine((s) => opts.maxScale === undefined || (s.split('.')[1]?.length ?? 0) <= opts.maxScale, {
      message: `must have at most ${opts.maxScale} decimal places`,
    });

export const isoTimestamp = () =>
  z.iso.datetime({ offset: true, message: 'must be an ISO 8601 timestamp such as 2026-11-01T00:00:00Z' });

export const periodString = () =>
  z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, { message: 'must be a month as YYYY-MM' });
