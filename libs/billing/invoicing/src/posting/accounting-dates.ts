/**
 * The accounting date of each invoicing document (SPEC §5, docs/ledger.md "Accounting dates"): the
 * business date it posts on, never the day the code ran, so replaying past months or finalizing
 * late still gives each month its own books. Pure; one definition used by rating (which fixes an
 * invoice's `issue_date` when it first writes it), posting and the close checks' populations.
 */
import { dayOf } from './posting-rules';

/**
 * A period invoice: the day its period ends — the last day of `[start, end)`. A period of October
 * (`end` = Nov 1 00:00 UTC) is issued on Oct 31: its usage is October's revenue and the next
 * period's fee it bills in advance is deferred from Oct 31.
 */
export function periodIssueDate(periodEnd: Date | string): string {
  return dayOf(new Date(new Date(periodEnd).getTime() - 1));
}

/** An opening invoice: the subscription's start day. */
export function openingIssueDate(startedAt: Date | string): string {
  return dayOf(new Date(startedAt));
}

/** A transition (immediate proration) invoice: the change's effective day. */
export function transitionIssueDate(effectiveAt: Date | string): string {
  return dayOf(new Date(effectiveAt));
}
