/**
 * @closebook/reconciliation — checks, runs, tolerances, exceptions and owned queues, sign-offs,
 * close gate (SPEC §6). Exceptions: docs/exceptions.md.
 */
export * from './exceptions';
export * from './runs';
export * from './close';
export { ReconciliationWorkbookSheets, RECONCILIATION_RESULTS_SHEET, EXCEPTIONS_SHEET } from './workbook/reconciliation-sheets';
