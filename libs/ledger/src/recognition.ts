/**
 * Revenue recognition, the pure part: how a deferred amount is spread over the calendar months of
 * its service period [start, end) (end exclusive, like billing periods).
 *
 * 1. The service period is cut into **monthly cycles**. When it is a whole number of cycles counted
 *    from its start (Jan 15 → Apr 15, a year from Jan 1), the cycles run forward from the start.
 *    Otherwise they run backward from its end, so the partial cycle is the first one (a prorated
 *    first billing period: Mar 15 → Jan 1 is a partial March, then whole months). An anchor day past
 *    a month's end falls on its last day, as billing periods do.
 * 2. Every whole cycle weighs the same (a yearly fee: 1/12 per cycle); a partial cycle weighs its
 *    days / the days of the full cycle it belongs to.
 * 3. A cycle's weight is spread over the calendar months it touches by days (Jan 15 → Feb 15: 17/31
 *    to January, 14/31 to February).
 * 4. The total is allocated over the months in proportion to their weights by the largest remainder
 *    method (Money.allocate): the shares sum exactly to the total, none is negative, and each is
 *    within one minor unit of its exact share. Weights are exact integers (days × lcm(28..31) /
 *    cycle days), so nothing is lost to a rounded fraction.
 */
import { Decimal, Money, dec } from '@closebook/money';
import {
  addMonths,
  daysBetween,
  firstDay,
  maxDate,
  minDate,
  periodOf,
  addPeriods,
  toDate,
  type DateString,
  type PeriodString,
} from './dates';
import { LedgerInputError } from './errors';

/** lcm(28, 29, 30, 31): one day of any monthly cycle is a whole number of these units. */
const CYCLE_UNITS = 377_580n;

export interface RecognitionCycle {
  /** The part of the service period in this cycle, [start, end). */
  start: DateString;
  end: DateString;
  /** The whole monthly cycle it belongs to. */
  cycleStart: DateString;
  cycleEnd: DateString;
  whole: boolean;
}

export interface RecognitionShare {
  period: PeriodString;
  /** Days of the service period in this month. */
  days: number;
  /** The month's weight (integer units; whole cycle = 377,580 × its days / its days). */
  weight: bigint;
  /** The share posted for the month, in whole minor units. */
  amount: Money;
  /** The exact (unrounded) share: total × weight / Σ weights. */
  exact: Decimal;
}

/** Monthly cycles of [start, end) (see the module comment for the anchoring rule). */
export function recognitionCycles(start: DateString, end: DateString): RecognitionCycle[] {
  if (end <= start) throw new LedgerInputError('empty_service_period', 'service_end must be after service_start', 'service_end');
  // Forward from the start when the period is a whole number of cycles.
  const startDay = Number(start.slice(8, 10));
  let n = 0;
  while (addMonths(start, n + 1, startDay) < end) n++;
  if (addMonths(start, n + 1, startDay) === end) {
    return Array.from({ length: n + 1 }, (_, k) => {
      const s = addMonths(start, k, startDay);
      const e = addMonths(start, k + 1, startDay);
      return { start: s, end: e, cycleStart: s, cycleEnd: e, whole: true };
    });
  }
  // Otherwise backward from the end: whole cycles, then the partial first one.
  const endDay = Number(end.slice(8, 10));
  const out: RecognitionCycle[] = [];
  let k = 0;
  while (addMonths(end, -(k + 1), endDay) >= start) {
    const s = addMonths(end, -(k + 1), endDay);
    const e = addMonths(end, -k, endDay);
    out.unshift({ start: s, end: e, cycleStart: s, cycleEnd: e, whole: true });
    k++;
  }
  const partialEnd = addMonths(end, -k, endDay);
  if (partialEnd > start) {
    out.unshift({ start, end: partialEnd, cycleStart: addMonths(end, -(k + 1), endDay), cycleEnd: partialEnd, whole: false });
  }
  return out;
}

/** Month weights of [start, end): whole cycles weigh the same, days split a cycle across months. */
export function recognitionWeights(start: DateString, end: DateString): { period: PeriodString; days: number; weight: bigint }[] {
  const months = new Map<PeriodString, { days: number; weight: bigint }>();
  for (const c of recognitionCycles(start, end)) {
    const perDay = CYCLE_UNITS / BigInt(daysBetween(c.cycleStart, c.cycleEnd));
    let p = periodOf(c.start);
    while (firstDay(p) < c.end) {
      const from = maxDate(c.start, firstDay(p));
      const to = minDate(c.end, firstDay(addPeriods(p, 1)));
      const days = daysBetween(from, to);
      if (days > 0) {
        const m = months.get(p) ?? { days: 0, weight: 0n };
        m.days += days;
        m.weight += BigInt(days) * perDay;
        months.set(p, m);
      }
      p = addPeriods(p, 1);
    }
  }
  return [...months.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([period, m]) => ({ period, ...m }));
}

/**
 * The monthly shares of `total` over the service period [serviceStart, serviceEnd). Bounds are
 * `YYYY-MM-DD` dates or instants at 00:00 UTC. Months are in order; a share may be zero when the
 * total has fewer minor units than there are months.
 */
export function recognitionShares(total: Money, serviceStart: string | Date, serviceEnd: string | Date): RecognitionShare[] {
  const start = toDate(serviceStart, 'service_start', { midnightOnly: true });
  const end = toDate(serviceEnd, 'service_end', { midnightOnly: true });
  if (!(total instanceof Money)) throw new LedgerInputError('invalid_type', 'total must be a Money', 'total');
  if (!total.isRounded()) throw new LedgerInputError('not_rounded', 'total must be rounded to its minor unit', 'total');
  if (total.isNegative()) throw new LedgerInputError('negative_amount', 'total must not be negative', 'total');
  const weights = recognitionWeights(start, end);
  const parts = total.allocate(weights.map((w) => w.weight));
  const sum = weights.reduce((s, w) => s + w.weight, 0n);
  return weights.map((w, i) => ({
    ...w,
    amount: parts[i],
    exact: total.amount.times(dec(w.weight)).div(dec(sum)),
  }));
}
