/**
 * Tolerances (SPEC §6), pure: whether a compared item is within what the organization accepts.
 * `absolute` is in the item's unit (money in major units of its currency, or a quantity);
 * `percent` is relative to |expected| (the reference figure: the recomputed value, or the prior
 * month for flux). `mode` says whether a result must be within both configured bounds or either.
 * With neither bound configured an item passes only when it matches exactly.
 * The same rule is written in SQL (`toleranceStatusSql`) for the set-based checks; a test checks
 * that both agree.
 */
import { dec, type DecimalInput } from '@closebook/money';

export const TOLERANCE_MODES = ['both', 'either'] as const;
export type ToleranceMode = (typeof TOLERANCE_MODES)[number];

export interface Tolerance {
  /** Decimal string (≥ 0) or null (not configured). */
  absolute: string | null;
  /** Decimal string, a percentage (25 = 25 %), ≥ 0, or null (not configured). */
  percent: string | null;
  mode: ToleranceMode;
}

/** The tolerance in force for a check, as captured by a run. */
export interface ToleranceInForce extends Tolerance {
  source: 'default' | 'configured';
}

export const CHECK_KEYS = ['events_rollups', 'rollups_lines', 'invoices_ledger', 'completeness', 'deferred_revenue', 'flux'] as const;
export type CheckKey = (typeof CHECK_KEYS)[number];
export const isCheckKey = (s: unknown): s is CheckKey => typeof s === 'string' && (CHECK_KEYS as readonly string[]).includes(s);

/**
 * Defaults when an organization configured nothing (docs/reconciliation.md): every check but flux
 * compares exactly (a recomputed figure either matches or it does not); flux flags a revenue line
 * that moved by more than 25 % of the prior month AND more than 1,000.00 of the currency (`either`
 * bound is enough to pass).
 */
export const DEFAULT_TOLERANCES: Record<CheckKey, Tolerance> = {
  events_rollups: { absolute: '0', percent: null, mode: 'both' },
  rollups_lines: { absolute: '0', percent: null, mode: 'both' },
  invoices_ledger: { absolute: '0', percent: null, mode: 'both' },
  completeness: { absolute: '0', percent: null, mode: 'both' },
  deferred_revenue: { absolute: '0', percent: null, mode: 'both' },
  flux: { absolute: '1000', percent: '25', mode: 'either' },
};

export type ResultStatus = 'pass' | 'fail' | 'warn';

/** Whether `variance` (= actual − expected) is within the tolerance, `expected` being the reference. */
export function withinTolerance(expected: DecimalInput, variance: DecimalInput, t: Tolerance): boolean {
  const v = dec(variance).abs();
  const absOk = t.absolute === null ? null : v.lte(dec(t.absolute));
  const pctOk = t.percent === null ? null : v.lte(dec(expected).abs().times(dec(t.percent)).div(100));
  if (absOk === null && pctOk === null) return v.isZero();
  if (t.mode === 'both') return absOk !== false && pctOk !== false;
  return absOk === true || pctOk === true;
}

/** Validates a tolerance given by a person; returns the issue or null. */
export function toleranceIssue(t: { absolute?: string | null; percent?: string | null; mode?: string }): { field: string; message: string } | null {
  const DEC = /^\d{1,15}(\.\d{1,12})?$/;
  if (t.absolute != null && !DEC.test(t.absolute)) return { field: 'absolute', message: 'absolute must be a non-negative decimal string (≤ 12 decimals) or null' };
  if (t.percent != null && !DEC.test(t.percent)) return { field: 'percent', message: 'percent must be a non-negative decimal string (a percentage, 25 = 25 %) or null' };
  if (t.mode != null && !(TOLERANCE_MODES as readonly string[]).includes(t.mode)) return { field: 'mode', message: 'mode must be both or either' };
  return null;
}

/**
 * The SQL twin of `withinTolerance`, as a `status` expression ('pass' | 'fail'), for
 * `INSERT … SELECT`. `expected` and `variance` are SQL expressions; the tolerance is inlined as
 * validated numeric literals (never user text), so the statement keeps a fixed parameter list.
 */
export function toleranceStatusSql(expected: string, variance: string, t: Tolerance): string {
  const lit = (s: string) => `${dec(s).toFixed()}::numeric`;
  const abs = t.absolute === null ? null : `(abs(${variance}) <= ${lit(t.absolute)})`;
  const pct = t.percent === null ? null : `(abs(${variance}) <= abs(${expected}) * ${lit(t.percent)} / 100)`;
  let ok: string;
  if (!abs && !pct) ok = `(${variance} = 0)`;
  else if (abs && pct) ok = t.mode === 'both' ? `(${abs} and ${pct})` : `(${abs} or ${pct})`;
  else ok = (abs ?? pct) as string;
  return `(case when coalesce(${ok}, false) then 'pass' else 'fail' end)`;
}
