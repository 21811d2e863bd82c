/**
 * The earliest and latest timestamp of the stored events of each customer in a batch: what the dirty
 * marks are computed from (every (subscription, period) overlapping a customer's span is marked).
 * Pure. The extremes are the clients' own strings, so PostgreSQL reads them exactly as it reads the
 * stored events, sub-millisecond digits included.
 */

export interface SpanInput {
  customerId: string;
  /** Epoch milliseconds (truncated) of `timestamp`. */
  ms: number;
  /** The validated ISO 8601 string, with up to 9 fractional digits. */
  timestamp: string;
}

export interface CustomerSpans {
  customerIds: string[];
  lo: string[];
  hi: string[];
}

/** Nanoseconds below the millisecond in an ISO 8601 string (0 without a fraction). */
export function subMillisecond(timestamp: string): number {
  const dot = timestamp.indexOf('.');
  if (dot < 0) return 0;
  let end = dot + 1;
  while (end < timestamp.length && timestamp.charCodeAt(end) >= 48 && timestamp.charCodeAt(end) <= 57) end++;
  const digits = timestamp.slice(dot + 1, end).padEnd(9, '0');
  return Number(digits.slice(3, 9));
}

/** Orders two instants given as (truncated ms, string); only ties on ms look at the finer digits. */
function compare(aMs: number, aTs: string, bMs: number, bTs: string): number {
  if (aMs !== bMs) return aMs - bMs;
  return subMillisecond(aTs) - subMillisecond(bTs);
}

export function customerSpans(rows: Iterable<SpanInput>): CustomerSpans {
  const spans = new Map<string, { loMs: number; lo: string; hiMs: number; hi: string }>();
  for (const r of rows) {
    const s = spans.get(r.customerId);
    if (s === undefined) {
      spans.set(r.customerId, { loMs: r.ms, lo: r.timestamp, hiMs: r.ms, hi: r.timestamp });
      continue;
    }
    if (compare(r.ms, r.timestamp, s.loMs, s.lo) < 0) {
      s.loMs = r.ms;
      s.lo = r.timestamp;
    }
    if (compare(r.ms, r.timestamp, s.hiMs, s.hi) > 0) {
      s.hiMs = r.ms;
      s.hi = r.timestamp;
    }
  }
  const out: CustomerSpans = { customerIds: [], lo: [], hi: [] };
  for (const [customerId, s] of spans) {
    out.customerIds.push(customerId);
    out.lo.push(s.lo);
    out.hi.push(s.hi);
  }
  return out;
}
