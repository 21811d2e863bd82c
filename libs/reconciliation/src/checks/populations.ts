/**
 * What each check compares for a month — its population — as SQL fragments shared by the check and
 * its fingerprint, so the two cannot disagree (docs/reconciliation.md "Populations"). A month's
 * documents are chosen by their accounting dates, never by when the code ran:
 * - usage (events → rollups, rollups → lines, completeness): the billing periods that END in the
 *   month, `period_end ∈ (month start, month end]` — exactly the periods whose period invoice is
 *   dated in it (an invoice is dated on its period's last day, invoicing's accounting-dates.ts);
 * - documents (invoices → ledger): invoices dated in the month (`issue_date`), credit notes created in
 *   it, and any invoice or credit note whose entry is dated in it (a late posting into this month);
 * - deferred revenue: the schedules billed by the month's end (`recognize_from`, the invoice's
 *   posting date) that still recognize in or after it.
 */
import type { MonthBounds } from './check';
import type { CheckKey } from './tolerance';

/** A condition on billing periods `bp`: the period ends in the month. Parameters: [start, end]. */
export const PERIOD_ENDS_IN_MONTH = `bp.period_end > ?::timestamptz and bp.period_end <= ?::timestamptz`;
export const periodEndsInMonthParams = (b: MonthBounds): string[] => [b.start, b.end];

/** A condition on `col` (a date column): in the month. Parameters: [first day, last day]. */
export const dayInMonth = (col: string) => `${col} >= ?::date and ${col} <= ?::date`;
export const dayInMonthParams = (b: MonthBounds): string[] => [b.firstDay, b.lastDay];

/**
 * `docs (kind, id)`: the invoices (finalized or paid) and credit notes of the month — dated in it,
 * or whose entry is dated in it. Parameters: `invoiceDocsParams`.
 */
export const LEDGER_DOCS_CTE = `docs as materialized (
  select k.kind, k.id from (
    select 'invoice'::text as kind, i.id from invoices i
     where i.organization_id = ?::uuid and ${dayInMonth('i.issue_date')}
    union
    select 'credit_note', c.id from credit_notes c
     where c.organization_id = ?::uuid and c.created_at >= ?::timestamptz and c.created_at < ?::timestamptz
    union
    select e.source_type, e.source_id::uuid from journal_entries e
     where e.organization_id = ?::uuid and ${dayInMonth('e.entry_date')} and e.source_type in ('invoice', 'credit_note') and e.reverses_entry_id is null
  ) k
  where k.kind = 'credit_note' or exists (select 1 from invoices i where i.id = k.id and i.status in ('finalized', 'paid'))
)`;
export const ledgerDocsParams = (org: string, b: MonthBounds): string[] => [org, ...dayInMonthParams(b), org, b.start, b.end, org, ...dayInMonthParams(b)];

/**
 * `schedules (id, currency, total_minor, service_start, service_end, final_period)`: the deferral
 * schedules out of Deferred revenue billed by the month's end and not fully recognized before it.
 * Parameters: [organization, last day, month].
 */
export const DEFERRAL_SCHEDULES_CTE = `schedules as materialized (
  select d.id, d.currency, d.total_minor, d.service_start, d.service_end, d.final_period from deferral_schedules d
  where d.organization_id = ?::uuid and d.from_account = '2200'
    and coalesce(d.recognize_from, (d.created_at at time zone 'UTC')::date) <= ?::date and d.final_period >= ?
)`;
export const deferralSchedulesParams = (org: string, b: MonthBounds, period: string): string[] => [org, b.lastDay, period];

/** The invoice status a month's checks compare: paid is finalized (a payment changes no line or posting of the invoice). */
export const STATUS_CLASS = (col: string) => `case ${col} when 'paid' then 'finalized' else ${col} end`;

/** How each check names its population and the documents that must not exist when it is empty. */
export const POPULATION_TERMS: Record<CheckKey, { unit: string; empty: string; documents: string }> = {
  events_rollups: { unit: 'billing periods ending in the month', empty: 'no billing period ends in the month', documents: 'period invoices dated in the month' },
  rollups_lines: { unit: 'usage lines of the period invoices dated in the month', empty: 'no usage line is dated in the month', documents: 'rollups with events of periods ending in the month' },
  invoices_ledger: { unit: 'invoices and credit notes of the month', empty: 'no invoice or credit note is dated in the month', documents: 'posted period invoices of periods ending in the month' },
  completeness: { unit: 'billing periods ended in the month', empty: 'no billing period ended in the month', documents: 'period invoices dated in the month' },
  deferred_revenue: { unit: 'deferral schedules billed by the month end and still recognizing', empty: 'no fee billed in advance is deferred in or across the month', documents: 'deferred revenue lines dated in the month' },
  flux: { unit: 'revenue lines dated in the month and the prior month', empty: 'no revenue was posted in the month or the prior month', documents: 'invoices with a non-zero total dated in the month or the prior month' },
};

export interface Population {
  count: number;
  unit: string;
  /** Documents of the check's kind found another way (a non-empty count with an empty population is an error). */
  documents: number;
  /** Why a check compared nothing (not_applicable). */
  reason?: string;
}

/**
 * A check's verdict on its population, from its fingerprint inputs (`population`, `documents`):
 * with a population (or a failing item: an unbilled rollup fails without one) it is judged by its
 * results; with none it is `not_applicable` with the reason when the month has nothing of the kind,
 * and an error when the month has documents its population missed — never a silent pass.
 */
export function populationVerdict(check: CheckKey, inputs: Record<string, unknown>, failed: number): { population: Population; verdict: 'results' | 'not_applicable' | 'error'; message?: string } {
  const t = POPULATION_TERMS[check];
  const count = Number(inputs.population ?? 0);
  const documents = Number(inputs.documents ?? 0);
  const population: Population = { count, unit: t.unit, documents };
  if (count > 0 || failed > 0) return { population, verdict: 'results' };
  if (documents > 0) {
    return { population, verdict: 'error', message: `${check} compared nothing while the month has ${documents} ${t.documents}: its population (${t.unit}) is wrong` };
  }
  return { population: { ...population, reason: t.empty }, verdict: 'not_applicable' };
}
