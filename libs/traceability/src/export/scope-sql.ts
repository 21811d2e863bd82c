/**
 * Which rows of a month the workbook covers (docs/exports.md, "Period scope"). Parameters are
 * `[organization_id, from, to]` (the month's UTC bounds) unless a fragment says otherwise.
 *
 * Rule: the month's invoices are those whose own period starts in the month (`period_start`,
 * UTC) — for a period invoice the billing period it rates, whenever it was finalized — so the
 * invoices, their lines and the rollups they priced describe the same usage. Usage events, ledger
 * entries and audit entries are the month's by their own date.
 */
export const INVOICES_IN_SCOPE = `select i.id from invoices i where i.organization_id = ? and i.period_start >= ? and i.period_start < ?`;

/** Invoices that are posted to the ledger (finalized, or paid since). */
export const POSTED_STATUSES = `('finalized', 'paid')`;
