/**
 * Which rows of a month the workbook covers (docs/exports.md, "Period scope"). Parameters are
 * `[organization_id, from, to]` (the month's UTC bounds) unless a fragment says otherwise.
 *
 * Rule: every document is the month's by its accounting date (docs/ledger.md "Accounting dates"),
 * the date it posts on: an invoice by its `issue_date` (a period invoice: its period's last day; an
 * opening invoice: its subscription's start day; a transition invoice: the change's day), a credit
 * note by the day it was created, a payment by `received_at`, a journal line by its entry's date —
 * so the invoices, their entries and the trial balance describe one month. Usage events and audit
 * entries are the month's by their own instant (the audit log adds what concerns the month's
 * documents and close, whenever it was written).
 */
export const INVOICES_IN_SCOPE = `select i.id from invoices i where i.organization_id = ? and i.issue_date >= ?::date and i.issue_date < ?::date`;

/** Invoices that are posted to the ledger (finalized, or paid since). */
export const POSTED_STATUSES = `('finalized', 'paid')`;
