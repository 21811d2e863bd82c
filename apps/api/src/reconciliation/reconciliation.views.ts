import { z } from 'zod';
import { paginationQuery, ValidationError } from '@closebook/platform';
import { CHECK_KEYS, type LatestCheck, type ReconciliationResult, type ReconciliationRun, type ToleranceView } from '@closebook/reconciliation';

const PERIOD = /^\d{4}-(0[1-9]|1[0-2])$/;

/** A `{yyyy-mm}` path segment, or 400. */
export function periodParam(v: string): string {
  if (typeof v !== 'string' || !PERIOD.test(v)) throw new ValidationError('invalid_value', 'period must be a month as YYYY-MM', 'period');
  return v;
}

export const startRunBody = z.object({ checks: z.array(z.enum(CHECK_KEYS)).min(1).max(CHECK_KEYS.length).optional() }).strict();
export const runListQuery = z.object({ ...paginationQuery }).strict();
export const resultsQuery = z
  .object({ ...paginationQuery, check: z.enum(CHECK_KEYS).optional(), status: z.enum(['pass', 'fail', 'warn']).optional() })
  .strict();

const decimalOrNull = z.string().regex(/^\d{1,15}(\.\d{1,12})?$/, { message: 'must be a non-negative decimal string' }).nullable();
export const toleranceBody = z
  .object({ check: z.enum(CHECK_KEYS), absolute: decimalOrNull.optional(), percent: decimalOrNull.optional(), mode: z.enum(['both', 'either']).optional() })
  .strict();

export const populationView = z
  .object({
    count: z.number().meta({ description: 'How many items of the month the check compared (its population, by accounting date)' }),
    unit: z.string().meta({ description: 'What the population counts, e.g. "invoices and credit notes of the month"' }),
    documents: z.number().meta({ description: 'Documents of that kind the month has by another road; non-zero with an empty population is an error' }),
    reason: z.string().optional().meta({ description: 'Why the check is not_applicable' }),
  })
  .nullable();

const checkSummaryView = z.object({
  check: z.string(),
  status: z.enum(['pending', 'passed', 'failed', 'error', 'not_applicable']),
  population: populationView,
  items: z.number().nullable(),
  passed: z.number().nullable(),
  failed: z.number().nullable(),
  warned: z.number().nullable(),
  fingerprint: z.string().nullable(),
  results_hash: z.string().nullable(),
  tolerance: z.record(z.string(), z.unknown()).nullable(),
  exceptions: z.record(z.string(), z.unknown()).nullable(),
  error: z.string().nullable(),
});

export const runView = z.object({
  id: z.string(),
  period: z.string(),
  status: z.enum(['queued', 'running', 'passed', 'failed', 'error']),
  started_by: z.string(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  checks: z.array(checkSummaryView),
  capture_hash: z.string().nullable(),
  inputs_fingerprint: z.record(z.string(), z.string()),
  error: z.string().nullable(),
});

export const runDetailView = runView.extend({ capture: z.record(z.string(), z.unknown()) });

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

export function presentRun(r: ReconciliationRun) {
  const caps = ((r.capture ?? {}).checks ?? {}) as Record<string, Record<string, unknown>>;
  return {
    id: r.id,
    period: r.period,
    status: r.status,
    started_by: r.startedBy,
    created_at: iso(r.createdAt) as string,
    started_at: iso(r.startedAt),
    finished_at: iso(r.finishedAt),
    checks: r.checks.map((check) => {
      const c = caps[check];
      return {
        check,
        status: ((c?.status as string) ?? 'pending') as 'pending' | 'passed' | 'failed' | 'error' | 'not_applicable',
        population: (c?.population as z.infer<typeof populationView>) ?? null,
        items: (c?.items as number) ?? null,
        passed: (c?.passed as number) ?? null,
        failed: (c?.failed as number) ?? null,
        warned: (c?.warned as number) ?? null,
        fingerprint: (c?.fingerprint as string) ?? null,
        results_hash: (c?.results_hash as string) ?? null,
        tolerance: (c?.tolerance as Record<string, unknown>) ?? ((r.capture.tolerances as Record<string, Record<string, unknown>> | undefined)?.[check] ?? null),
        exceptions: (c?.exceptions as Record<string, unknown>) ?? null,
        error: (c?.error as string) ?? null,
      };
    }),
    capture_hash: r.captureHash ?? null,
    inputs_fingerprint: r.inputsFingerprint ?? {},
    error: r.error ?? null,
  };
}

export const presentRunDetail = (r: ReconciliationRun) => ({ ...presentRun(r), capture: r.capture });

export const resultView = z.object({
  id: z.string(),
  run_id: z.string(),
  period: z.string(),
  check: z.string(),
  item_key: z.string(),
  item_type: z.string(),
  expected: z.string().nullable(),
  actual: z.string().nullable(),
  variance: z.string().nullable(),
  currency: z.string().nullable(),
  tolerance: z.record(z.string(), z.unknown()),
  status: z.enum(['pass', 'fail', 'warn']),
  details: z.record(z.string(), z.unknown()),
  refs: z.record(z.string(), z.unknown()),
  created_at: z.string(),
});

const num = (v: string | null | undefined) => (v == null ? null : String(v));

export const presentResult = (r: ReconciliationResult) => ({
  id: r.id,
  run_id: r.runId,
  period: r.period,
  check: r.checkKey,
  item_key: r.itemKey,
  item_type: r.itemType,
  expected: num(r.expected),
  actual: num(r.actual),
  variance: num(r.variance),
  currency: r.currency ?? null,
  tolerance: r.tolerance,
  status: r.status,
  details: r.details,
  refs: r.refs,
  created_at: iso(r.createdAt) as string,
});

export const latestView = z.object({
  check: z.string(),
  run_id: z.string(),
  run_status: z.string(),
  status: z.string(),
  finished_at: z.string().nullable(),
  items: z.number(),
  passed: z.number(),
  failed: z.number(),
  warned: z.number(),
  fingerprint: z.string().nullable(),
  results_hash: z.string().nullable(),
  population: populationView,
});
export const presentLatest = (l: LatestCheck) => ({ ...l });

export const toleranceView = z.object({
  check: z.string(),
  absolute: z.string().nullable(),
  percent: z.string().nullable(),
  mode: z.enum(['both', 'either']),
  source: z.enum(['default', 'configured']),
  updated_at: z.string().nullable(),
});
export const presentTolerance = (t: ToleranceView) => ({ check: t.check, absolute: t.absolute, percent: t.percent, mode: t.mode, source: t.source, updated_at: iso(t.updated_at) });
