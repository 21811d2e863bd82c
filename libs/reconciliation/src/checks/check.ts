/**
 * What every reconciliation check shares: its context, its outcome, the month's bounds and the
 * set-based writing of results (`INSERT INTO reconciliation_results SELECT …`).
 */
import type { EntityManager, Knex } from '@mikro-orm/postgresql';
import { getCurrency } from '@closebook/money';
import { addPeriods, firstDay } from '@closebook/ledger';
import type { CheckKey, ToleranceInForce } from './tolerance';

export interface CheckContext {
  organizationId: string;
  period: string;
  runId: string;
  tolerance: ToleranceInForce;
}

export interface CheckSummary {
  items: number;
  passed: number;
  failed: number;
  warned: number;
  /** SHA-256 over the check's results of the run, ordered by item key. */
  results_hash: string;
}

export interface CheckOutcome extends CheckSummary {
  fingerprint: string;
  inputs: Record<string, unknown>;
}

/** The exception type a check's failures open (ExceptionsService / owned queues). */
export type CheckItemType = 'usage_integrity' | 'billing_variance' | 'ledger_posting' | 'completeness' | 'deferred_revenue' | 'flux';

export interface ReconciliationCheck {
  readonly key: CheckKey;
  readonly itemType: CheckItemType;
  /** Writes the check's results for `ctx.runId` and returns its summary. */
  run(em: EntityManager, ctx: CheckContext): Promise<CheckOutcome>;
}

/** A month as instants: [start, end) at 00:00 UTC, plus the previous month's start. */
export interface MonthBounds {
  start: string;
  end: string;
  prevStart: string;
  /** YYYY-MM-DD of the first and last day. */
  firstDay: string;
  lastDay: string;
}

export function monthBounds(period: string): MonthBounds {
  const start = `${firstDay(period)}T00:00:00.000Z`;
  const next = firstDay(addPeriods(period, 1));
  const last = new Date(Date.parse(`${next}T00:00:00.000Z`) - 86_400_000).toISOString().slice(0, 10);
  return { start, end: `${next}T00:00:00.000Z`, prevStart: `${firstDay(addPeriods(period, -1))}T00:00:00.000Z`, firstDay: firstDay(period), lastDay: last };
}

/** `{"USD": 2, …}` for the currencies an organization books in: minor units ↔ decimals in SQL. */
export async function currencyExponents(em: EntityManager, organizationId: string): Promise<string> {
  const rows = await em.execute<{ currency: string }[]>(
    `select currency from ledger_accounts where organization_id = ? group by currency
     union select currency from invoices where organization_id = ? group by currency`,
    [organizationId, organizationId],
  );
  const out: Record<string, number> = {};
  for (const r of rows) {
    try {
      out[r.currency] = getCurrency(r.currency).minorUnits;
    } catch {
      out[r.currency] = 2;
    }
  }
  return JSON.stringify(out);
}

/**
 * Writes the rows of `select` (columns item_key, expected, actual, variance, status, currency,
 * details, refs) as results of the run's check; a retried check writes nothing twice.
 */
export async function insertResults(em: EntityManager, ctx: CheckContext, check: ReconciliationCheck, select: string, params: unknown[]): Promise<number> {
  // Bound parameters, not `em.execute`'s inlining: a page's results travel as one JSON document of a
  // few megabytes (the usage-line replay, the events check's second lane), and escaping it into the
  // SQL text character by character cost Node CPU and garbage for nothing. So every parameter here
  // and in `select` carries its type in the SQL (or takes it from the column it is compared with).
  const knex = em.getTransactionContext<Knex.Transaction>() ?? em.getKnex();
  const res = await knex.raw(
    `insert into reconciliation_results (id, created_at, organization_id, run_id, period, check_key, item_key, item_type,
                                         expected, actual, variance, tolerance, status, currency, details, refs)
     select gen_random_uuid(), statement_timestamp(), ?::uuid, ?::uuid, ?::text, ?::text, r.item_key, ?::text,
            r.expected, r.actual, r.variance, ?::jsonb, r.status, r.currency, coalesce(r.details, '{}'::jsonb), coalesce(r.refs, '{}'::jsonb)
     from (${select}) r
     on conflict (run_id, check_key, item_key) do nothing`,
    [ctx.organizationId, ctx.runId, ctx.period, check.key, check.itemType, JSON.stringify(ctx.tolerance), ...params] as Knex.RawBinding[],
  );
  return Number((res as { rowCount?: number }).rowCount ?? 0);
}

/** Counts and hash of what a check wrote for a run. */
export async function summarize(em: EntityManager, runId: string, checkKey: string): Promise<CheckSummary> {
  const [row] = await em.execute<{ items: number; passed: number; failed: number; warned: number; results_hash: string }[]>(
    `select count(*)::int as items,
            count(*) filter (where status = 'pass')::int as passed,
            count(*) filter (where status = 'fail')::int as failed,
            count(*) filter (where status = 'warn')::int as warned,
            encode(sha256(convert_to(coalesce(string_agg(
              concat_ws('|', item_key, status, expected::text, actual::text, variance::text, currency, details::text),
              E'\\n' order by item_key collate "C"), ''), 'UTF8')), 'hex') as results_hash
     from reconciliation_results where run_id = ? and check_key = ?`,
    [runId, checkKey],
  );
  return row;
}
