/**
 * Proration by whole UTC days (SPEC §2): a change effective at instant t applies from the start of
 * t's UTC day; factor = days remaining including that day / days in the period. Periods are
 * half-open [start, end) with both bounds at 00:00 UTC.
 */
import { Decimal, dec } from '@closebook/money';
import { RatingError } from './errors';
import { Instant, iso, isUtcMidnight, startOfUtcDay, toMs, wholeDays } from './util';

export interface ProrationFactor {
  /** Days from `from` (inclusive) to `to` (exclusive). */
  daysRemaining: number;
  daysInPeriod: number;
  /** daysRemaining / daysInPeriod as a Decimal (exact when it terminates, else 60 significant digits). */
  factor: Decimal;
  /** "10/30 days" */
  label: string;
  /** Start of the prorated span (00:00 UTC of the effective day), ISO. */
  from: string;
  /** End of the prorated span (exclusive), ISO. */
  to: string;
}

/** The JSON form carried on a prorated invoice line. */
export interface ProrationInfo {
  days: number;
  days_in_period: number;
  label: string;
  /** daysRemaining / daysInPeriod as a decimal string (display; amounts use amount × days ÷ days_in_period). */
  factor: string;
  from: string;
  to: string;
  /** The full period the fraction is taken of. */
  period_start: string;
  period_end: string;
}

export function assertPeriod(startMs: number, endMs: number, field = 'period'): void {
  if (!isUtcMidnight(startMs) || !isUtcMidnight(endMs)) {
    throw new RatingError('period_not_midnight', `${field} bounds must be at 00:00 UTC`, field);
  }
  if (endMs <= startMs) throw new RatingError('empty_period', `${field} must end after it starts`, field);
}

export function fraction(days: number, daysInPeriod: number): Decimal {
  return dec(days).div(dec(daysInPeriod));
}

/** The factor of a span [fromMs, toMs) (midnights) inside a period. */
export function spanFactor(fromMs: number, toMs_: number, startMs: number, endMs: number): ProrationFactor {
  assertPeriod(startMs, endMs);
  if (fromMs < startMs || toMs_ > endMs || toMs_ < fromMs) {
    throw new RatingError('span_outside_period', 'the prorated span must lie inside the period', 'from');
  }
  const daysRemaining = wholeDays(fromMs, toMs_);
  const daysInPeriod = wholeDays(startMs, endMs);
  return {
    daysRemaining,
    daysInPeriod,
    factor: fraction(daysRemaining, daysInPeriod),
    label: `${daysRemaining}/${daysInPeriod} days`,
    from: iso(fromMs),
    to: iso(toMs_),
  };
}

/**
 * Remaining share of [periodStart, periodEnd) for a change effective at `effectiveAt`: from the
 * start of its UTC day to the period end. The effective day must fall inside the period.
 */
export function prorationFactor(effectiveAt: Instant, periodStart: Instant, periodEnd: Instant): ProrationFactor {
  const s = toMs(periodStart, 'period_start');
  const e = toMs(periodEnd, 'period_end');
  assertPeriod(s, e);
  const from = startOfUtcDay(toMs(effectiveAt, 'effective_at'));
  if (from < s || from >= e) {
    throw new RatingError(
      'effective_outside_period',
      `effective day ${iso(from).slice(0, 10)} is outside the period [${iso(s)}, ${iso(e)})`,
      'effective_at',
    );
  }
  return spanFactor(from, e, s, e);
}

export function toProrationInfo(f: ProrationFactor, periodStart: string, periodEnd: string): ProrationInfo {
  return {
    days: f.daysRemaining,
    days_in_period: f.daysInPeriod,
    label: f.label,
    factor: f.factor.toFixed(),
    from: f.from,
    to: f.to,
    period_start: periodStart,
    period_end: periodEnd,
  };
}
