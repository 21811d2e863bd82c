import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '@closebook/platform';
import { firstPeriod, nextPeriod, periodContaining, type BillingPeriod as PeriodBounds } from '@closebook/rating';
import { BillingPeriod } from './entities/billing-period.entity';
import { Subscription } from './entities/subscription.entity';

const DAY_MS = 86_400_000;

/** What period generation needs to know of a subscription. */
export interface PeriodSubject {
  id: string;
  organizationId: string;
  startedAt: Date;
  endsAt?: Date | null;
  billingAnchor: number;
}

export interface PlannedPeriod {
  start: Date;
  end: Date;
  seq: number;
}

/**
 * The instant billing periods end at when service ends at `endsAt`: the next UTC midnight (the
 * day service ends on is covered, so every instant the subscription is in force lies in a period).
 */
export function serviceEndBoundary(endsAt: Date): Date {
  const ms = endsAt.getTime();
  return new Date(Math.ceil(ms / DAY_MS) * DAY_MS);
}

/**
 * The horizon periods are kept generated through: the start of the period after the one
 * containing `now` (or containing the subscription's start, when it starts in the future).
 */
export function periodHorizon(sub: Pick<PeriodSubject, 'startedAt' | 'billingAnchor'>, now: Date): Date {
  const ref = sub.startedAt > now ? sub.startedAt : now;
  return new Date(nextPeriod(periodContaining(sub.billingAnchor, ref), sub.billingAnchor).start);
}

/**
 * The periods after `last` (or from the first, prorated one) whose start is <= `until`, clipped
 * to the end of service. Pure: the rating core's period functions and the anchor decide the bounds.
 */
export function planPeriods(sub: PeriodSubject, last: PlannedPeriod | null, until: Date): PlannedPeriod[] {
  const limit = sub.endsAt ? serviceEndBoundary(sub.endsAt).getTime() : Infinity;
  const out: PlannedPeriod[] = [];
  let p: PeriodBounds;
  let seq: number;
  if (last) {
    // A clipped last period ends at the service end: nothing follows it.
    if (last.end.getTime() >= limit) return out;
    p = nextPeriod({ start: last.start.toISOString(), end: last.end.toISOString() }, sub.billingAnchor);
    seq = last.seq + 1;
  } else {
    p = firstPeriod(sub.startedAt, sub.billingAnchor).period;
    seq = 1;
  }
  while (Date.parse(p.start) <= until.getTime() && Date.parse(p.start) < limit) {
    const end = Math.min(Date.parse(p.end), limit);
    out.push({ start: new Date(p.start), end: new Date(end), seq });
    p = nextPeriod(p, sub.billingAnchor);
    seq++;
  }
  return out;
}

/**
 * Billing periods of subscriptions: generated ahead of time from the anchor, idempotently, so
 * metering can attribute events to (subscription, period) rows.
 */
@Injectable()
export class BillingPeriodsService {
  /**
   * Makes sure every period of the subscription whose start is <= `until` exists (so the period
   * containing `until` does). Idempotent and safe to run concurrently (ON CONFLICT DO NOTHING).
   * Returns the number of periods inserted.
   */
  async ensureThrough(em: EntityManager, subscriptionId: string, until: Date): Promise<number> {
    const sub = await em.findOne(Subscription, { id: subscriptionId });
    if (!sub) throw new NotFoundError('subscription', subscriptionId);
    return this.ensureFor(em, sub, until);
  }

  /** `ensureThrough` for a subscription already loaded. */
  async ensureFor(em: EntityManager, sub: PeriodSubject, until: Date): Promise<number> {
    const last = await em.findOne(BillingPeriod, { subscriptionId: sub.id }, { orderBy: { seq: 'desc' } });
    const planned = planPeriods(sub, last ? { start: last.periodStart, end: last.periodEnd, seq: last.seq } : null, until);
    if (!planned.length) return 0;
    const inserted = await em.execute<{ id: string }[]>(
      `insert into billing_periods (id, organization_id, subscription_id, period_start, period_end, seq, created_at)
       select t.id, ?, ?, t.period_start, t.period_end, t.seq, now()
       from unnest(array[?]::uuid[], array[?]::timestamptz[], array[?]::timestamptz[], array[?]::int[]) as t(id, period_start, period_end, seq)
       on conflict do nothing
       returning id`,
      [
        sub.organizationId,
        sub.id,
        planned.map(() => randomUUID()),
        planned.map((p) => p.start.toISOString()),
        planned.map((p) => p.end.toISOString()),
        planned.map((p) => p.seq),
      ],
    );
    return inserted.length;
  }

  /** Periods of a subscription in order. */
  async list(em: EntityManager, subscriptionId: string): Promise<BillingPeriod[]> {
    return em.find(BillingPeriod, { subscriptionId }, { orderBy: { seq: 'asc' } });
  }

  /** The period of a subscription containing `t` (period_start <= t < period_end), if generated. */
  async containing(em: EntityManager, subscriptionId: string, t: Date): Promise<BillingPeriod | null> {
    return em.findOne(BillingPeriod, { subscriptionId, periodStart: { $lte: t }, periodEnd: { $gt: t } });
  }
}
