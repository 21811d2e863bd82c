/**
 * Calendar dates and months of the ledger: plain `YYYY-MM-DD` and `YYYY-MM` strings in UTC, never
 * times. Numbers here only count days and months; no amount is ever a number.
 */
import { LedgerInputError } from './errors';

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const PERIOD_RE = /^(\d{4})-(0[1-9]|1[0-2])$/;
const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` of a real calendar day. */
export type DateString = string;
/** `YYYY-MM`: an accounting period (a calendar month). */
export type PeriodString = string;

export function isPeriod(p: unknown): p is PeriodString {
  return typeof p === 'string' && PERIOD_RE.test(p);
}

export function assertPeriod(p: unknown, field = 'period'): PeriodString {
  if (!isPeriod(p)) throw new LedgerInputError('invalid_period', `${field} must be a month as YYYY-MM`, field);
  return p;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function fromMs(ms: number): DateString {
  const d = new Date(ms);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

/** Milliseconds of 00:00 UTC of a (valid) date string. */
export function dateMs(d: DateString): number {
  const m = DATE_RE.exec(d)!;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
}

/**
 * A calendar date from `YYYY-MM-DD`, or from an instant (a Date or ISO string) at 00:00 UTC — the
 * form billing periods take (`[start, end)` at midnight). Anything else is a 400 naming `field`.
 */
export function toDate(v: unknown, field = 'date', opts: { midnightOnly?: boolean } = {}): DateString {
  if (typeof v === 'string') {
    const m = DATE_RE.exec(v);
    if (m) {
      const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
      if (fromMs(ms) === v && Number(m[1]) >= 1) return v;
      throw new LedgerInputError('invalid_date', `${field} is not a calendar date: ${v}`, field);
    }
    if (/^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v))) return toDate(new Date(v), field, opts);
    throw new LedgerInputError('invalid_date', `${field} must be a date as YYYY-MM-DD`, field);
  }
  if (v instanceof Date && !Number.isNaN(v.getTime())) {
    const ms = v.getTime();
    if ((opts.midnightOnly ?? false) && ms % DAY_MS !== 0) {
      throw new LedgerInputError('invalid_date', `${field} must be at 00:00 UTC (a period bound), got ${v.toISOString()}`, field);
    }
    return fromMs(ms - (((ms % DAY_MS) + DAY_MS) % DAY_MS));
  }
  throw new LedgerInputError('invalid_date', `${field} must be a date as YYYY-MM-DD`, field);
}

export function periodOf(d: DateString): PeriodString {
  return d.slice(0, 7);
}

/** Months since year 0 (for month arithmetic). */
export function periodIndex(p: PeriodString): number {
  return Number(p.slice(0, 4)) * 12 + Number(p.slice(5, 7)) - 1;
}

export function periodFromIndex(i: number): PeriodString {
  return `${pad(Math.floor(i / 12), 4)}-${pad((i % 12) + 1)}`;
}

export function addPeriods(p: PeriodString, n: number): PeriodString {
  return periodFromIndex(periodIndex(p) + n);
}

export function firstDay(p: PeriodString): DateString {
  return `${p}-01`;
}

export function daysInMonth(year: number, month0: number): number {
  return new Date(Date.UTC(year, month0 + 1, 0)).getUTCDate();
}

/** The last calendar day of the month (entries of a month-end run are dated on it). */
export function lastDay(p: PeriodString): DateString {
  const y = Number(p.slice(0, 4));
  const m0 = Number(p.slice(5, 7)) - 1;
  return `${p}-${pad(daysInMonth(y, m0))}`;
}

/** Whole days from a to b (b exclusive). */
export function daysBetween(a: DateString, b: DateString): number {
  return Math.round((dateMs(b) - dateMs(a)) / DAY_MS);
}

export function minDate(a: DateString, b: DateString): DateString {
  return a <= b ? a : b;
}

export function maxDate(a: DateString, b: DateString): DateString {
  return a >= b ? a : b;
}

/**
 * `d` moved by `n` months on the anchor day `anchorDay` (default: d's own day). An anchor past a
 * month's last day falls on that last day (31 → Apr 30, Feb 28/29), as billing periods do.
 */
export function addMonths(d: DateString, n: number, anchorDay = Number(d.slice(8, 10))): DateString {
  const idx = Number(d.slice(0, 4)) * 12 + Number(d.slice(5, 7)) - 1 + n;
  const y = Math.floor(idx / 12);
  const m0 = idx % 12;
  return `${pad(y, 4)}-${pad(m0 + 1)}-${pad(Math.min(anchorDay, daysInMonth(y, m0)))}`;
}

/** Every period from a to b, both included (a ≤ b). */
export function periodsBetween(a: PeriodString, b: PeriodString): PeriodString[] {
  const out: PeriodString[] = [];
  for (let i = periodIndex(a); i <= periodIndex(b); i++) out.push(periodFromIndex(i));
  return out;
}

/** Today's UTC date (the only clock read of the library, used by reports' defaults). */
export function todayUtc(now: Date = new Date()): DateString {
  return toDate(now);
}
