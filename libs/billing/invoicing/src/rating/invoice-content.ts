import { createHash } from 'node:crypto';
import { MoneyError } from '@closebook/money';
import type { EntityManager } from '@mikro-orm/postgresql';
import { canonicalJson, lockInOrder, UnprocessableError } from '@closebook/platform';
import type { RatedInvoice } from '@closebook/rating';

/**
 * SHA-256 of what an invoice says to its customer: kind, period, currency, every line (key, type,
 * service period, quantity, unit amount, tiers, exact and rounded amount, description), tax and
 * totals. Stored with the invoice, so a finalized invoice can be shown to be the one that was rated.
 */
export function contentHash(inv: RatedInvoice): string {
  const content = {
    kind: inv.kind,
    subscription_id: inv.subscription_id,
    currency: inv.currency,
    period_start: inv.period_start,
    period_end: inv.period_end,
    lines: inv.lines.map((l) => ({
      line_key: l.line_key,
      type: l.type,
      product_key: l.product_key,
      price_key: l.price_key,
      period_start: l.period_start,
      period_end: l.period_end,
      quantity: l.quantity,
      unit_amount: l.unit_amount,
      tiers: l.tiers,
      amount_exact: l.amount_exact,
      amount: l.amount,
      description: l.description,
    })),
    subtotal: inv.subtotal,
    tax: inv.tax ? { rate: inv.tax.rate, amount: inv.tax.amount } : null,
    total: inv.total,
  };
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

/**
 * Runs the pure rating core; a rule it refuses (a plan or state it cannot rate) becomes a 422 with
 * the core's code in `details.code`, never a 500.
 */
export function rate<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof MoneyError) {
      throw new UnprocessableError('rating_failed', `${what} cannot be rated: ${err.message}`, err.field ?? undefined, { code: err.code });
    }
    throw err;
  }
}

/** A subscription's lock key: rating, re-rating, finalizing and transitions of one subscription never interleave. */
export const subscriptionLockKey = (subscriptionId: string) => `invoicing:${subscriptionId.toLowerCase()}`;

/** The subscription locks of `subscriptionIds` in the current transaction (platform's `lockInOrder`: one order for every taker). */
export function lockSubscriptions(tx: EntityManager, subscriptionIds: readonly string[]): Promise<void> {
  return lockInOrder(tx, subscriptionIds.map(subscriptionLockKey));
}

/**
 * Whether period invoice `i` is stale: a rollup of its subscription and period differs from the
 * invoice's snapshot of it (count, aggregate or digest), or a rollup with events is not in the
 * snapshot (a new price key). `PeriodRatingService.isStale` asks it of one invoice, finalization of a set.
 */
export const PERIOD_INVOICE_STALE = `exists (
  select 1 from usage_rollups u
  where u.subscription_id = i.subscription_id and u.period_start = i.period_start
    and not exists (select 1 from invoice_rollups r where r.invoice_id = i.id and r.rollup_id = u.id
                    and r.event_count = u.event_count and r.digest = u.digest and r.aggregate = u.aggregate)
    and (u.event_count > 0 or exists (select 1 from invoice_rollups r where r.invoice_id = i.id and r.rollup_id = u.id)))`;
