/**
 * Billing periods (SPEC §2): monthly usage cycles starting on the `billing_anchor` day of the
 * month at 00:00 UTC. An anchor past a month's last day falls on that last day (31 → Apr 30,
 * Feb 28/29) and returns to the anchor the month after. Periods are half-open [start, end).
 */
import { RatingError } from './errors';
import { ProrationFactor, spanFactor } from './proration';
import { DAY_MS, Instant, iso, startOfUtcDay, toMs } from './util';

export interface BillingPeriod {
  /** ISO instant, 00:00 UTC, inclusive. */
  start: string;
  /** ISO instant, 00:00 UTC, exclusive. */
  end: string;
}

export const DEFAULT_ANCHOR_DAY = 1;

export function assertAnchorDay(anchorDay: number, field = 'billing_anchor'): number {
  if (!Number.isInteger(anchorDay) || anchorDay < 1 || anchorDay > 31) {
    throw new RatingError('invalid_anchor', `${field} must be a day of the month 1..31, got ${String(anchorDay)}`, field);
  }
  return anchorDay;
}

function daysInMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

/** 00:00 UTC of the anchor day in month `month0` of `year` (month0 may overflow ±). */
export function anchorDate(year: number, month0: number, anchorDay: number): number {
  const y = year + Math.floor(month0 / 12);
  const m = ((month0 % 12) + 12) % 12;
  return Date.UTC(y, m, Math.min(anchorDay, daysInMonth(y, m)));
}

/** Months since year 0 of an instant's UTC calendar month. */
export function monthIndex(ms: number): number {
  const d = new Date(ms);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

function cycleAt(index: number, anchorDay: number): number {
  return anchorDate(Math.floor(index / 12), index % 12, anchorDay);
}

/** The full monthly cycle containing instant t. */
export function periodContaining(anchorDay: number, t: Instant): BillingPeriod {
  assertAnchorDay(anchorDay);
  const ms = toMs(t, 't');
  const mi = monthIndex(ms);
  const here = cycleAt(mi, anchorDay);
  const startIdx = ms >= here ? mi : mi - 1;
  return { start: iso(cycleAt(startIdx, anchorDay)), end: iso(cycleAt(startIdx + 1, anchorDay)) };
}

/** The cycle that follows p (p may be a partial first period: it ends on an anchor). */
export function nextPeriod(p: BillingPeriod, anchorDay: number): BillingPeriod {
  return periodContaining(anchorDay, p.end);
}

/** The full cycle before the one that starts at p.start's cycle. */
export function previousPeriod(p: BillingPeriod, anchorDay: number): BillingPeriod {
  const cur = periodContaining(anchorDay, p.start);
  return periodContaining(anchorDay, iso(toMs(cur.start) - DAY_MS));
}

export interface FirstPeriod {
  /** [start of the subscription's first UTC day, next anchor). */
  period: BillingPeriod;
  /** The full cycle the first period lies in. */
  cycle: BillingPeriod;
  /** True when the subscription started after the cycle's first day. */
  prorated: boolean;
  /** Share of the full cycle the first period covers (1 when not prorated). */
  proration: ProrationFactor;
}

/** A subscription starting mid-cycle gets a prorated first period up to the next anchor. */
export function firstPeriod(subscriptionStart: Instant, anchorDay: number = DEFAULT_ANCHOR_DAY): FirstPeriod {
  const sod = startOfUtcDay(toMs(subscriptionStart, 'subscription_start'));
  const cycle = periodContaining(anchorDay, iso(sod));
  const cs = toMs(cycle.start);
  const ce = toMs(cycle.end);
  return {
    period: { start: iso(sod), end: cycle.end },
    cycle,
    prorated: sod !== cs,
    proration: spanFactor(sod, ce, cs, ce),
  };
}

/** The first `count` periods of a subscription, the first one possibly partial. */
export function periodsFrom(subscriptionStart: Instant, anchorDay: number, count: number): BillingPeriod[] {
  const out: BillingPeriod[] = [];
  let p = firstPeriod(subscriptionStart, anchorDay).period;
  for (let i = 0; i < count; i++) {
    out.push(p);
    p = nextPeriod(p, anchorDay);
  }
  return out;
}

export interface FeeYear {
  /** Year number since the subscription started (0 = first). */
  year: number;
  /** The billed span: [max(full.start, subscription's first day), full.end). */
  period: BillingPeriod;
  /** Twelve full monthly cycles. */
  full: BillingPeriod;
  /** True when the subscription's first year started mid-cycle. */
  prorated: boolean;
  /** Share of the full year the billed span covers. */
  proration: ProrationFactor;
}

/**
 * Yearly fee periods for `interval: 'year'` plans: twelve monthly cycles, counted from the cycle
 * the subscription started in. A mid-cycle start makes the first year partial (it still ends on
 * the 12th anchor, so renewals stay on the anchor) and prorated against the full twelve cycles.
 */
export function feeYearContaining(subscriptionStart: Instant, anchorDay: number, t: Instant): FeeYear {
  const first = firstPeriod(subscriptionStart, anchorDay);
  const c0 = monthIndex(toMs(first.cycle.start));
  const cur = periodContaining(anchorDay, t);
  const idx = monthIndex(toMs(cur.start)) - c0;
  if (idx < 0) throw new RatingError('before_subscription_start', 't is before the subscription started', 't');
  const year = Math.floor(idx / 12);
  const fs = cycleAt(c0 + year * 12, anchorDay);
  const fe = cycleAt(c0 + year * 12 + 12, anchorDay);
  const subStart = toMs(first.period.start);
  const s = Math.max(fs, subStart);
  return {
    year,
    period: { start: iso(s), end: iso(fe) },
    full: { start: iso(fs), end: iso(fe) },
    prorated: s !== fs,
    proration: spanFactor(s, fe, fs, fe),
  };
}

/** True when the period `p` (a usage cycle of the subscription) is the first cycle of a fee year. */
export function opensFeeYear(subscriptionStart: Instant, anchorDay: number, p: BillingPeriod): boolean {
  return feeYearContaining(subscriptionStart, anchorDay, p.start).period.start === iso(toMs(p.start));
}

/** Whole UTC days in a period. */
export function periodDays(p: BillingPeriod): number {
  return Math.round((toMs(p.end) - toMs(p.start)) / DAY_MS);
}

export function samePeriod(a: BillingPeriod, b: BillingPeriod): boolean {
  return toMs(a.start) === toMs(b.start) && toMs(a.end) === toMs(b.end);
}
