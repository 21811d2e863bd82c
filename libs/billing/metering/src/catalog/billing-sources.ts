/**
 * Plain-row reads of the subscriptions module's tables (subscriptions, billing_periods) that the
 * rollup and allowance paths need by id, in whatever transaction they run. Rules (seats in force,
 * plan documents, customers by reference) come from that module's and the catalog's services.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { isUuid, NotFoundError } from '@closebook/platform';

export interface SubscriptionRow {
  id: string;
  organizationId: string;
  customerId: string;
  planVersionId: string;
  status: string;
  startedAt: Date;
  endsAt: Date | null;
  /** Day of the month (1..31) on which usage cycles start. */
  anchorDay: number;
  seats: number;
}

export interface PeriodRow {
  start: Date;
  end: Date;
  seq: number | null;
}

/** billing_anchor: the day of the month (1..31) usage cycles start on; the start day when unusable. */
export function anchorDayOf(v: unknown, fallback: Date): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 31) return v;
  if (typeof v === 'string' && /^\d{1,2}$/.test(v) && +v >= 1 && +v <= 31) return +v;
  const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : null;
  if (d && !Number.isNaN(d.getTime())) return d.getUTCDate();
  return fallback.getUTCDate();
}

const toDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

export const BillingSources = {
  async subscription(em: EntityManager, organizationId: string, subscriptionId: string): Promise<SubscriptionRow> {
    if (!isUuid(subscriptionId)) throw new NotFoundError('subscription', subscriptionId);
    const rows = await em.execute<Record<string, unknown>[]>(
      `select id, organization_id, customer_id, plan_version_id, status, started_at, ends_at, billing_anchor, seats
       from subscriptions where organization_id = ? and id = ?::uuid`,
      [organizationId, subscriptionId],
    );
    if (!rows.length) throw new NotFoundError('subscription', subscriptionId);
    return toSubscriptionRow(rows[0]);
  },

  /** Without a tenant filter: for jobs, which carry ids that the database produced. */
  async subscriptionById(em: EntityManager, subscriptionId: string): Promise<SubscriptionRow | null> {
    const rows = await em.execute<Record<string, unknown>[]>(
      `select id, organization_id, customer_id, plan_version_id, status, started_at, ends_at, billing_anchor, seats
       from subscriptions where id = ?::uuid`,
      [subscriptionId],
    );
    return rows.length ? toSubscriptionRow(rows[0]) : null;
  },

  /** The period of the subscription containing `at` (half-open), if any. */
  async periodAt(em: EntityManager, subscriptionId: string, at: Date): Promise<PeriodRow | null> {
    const rows = await em.execute<Record<string, unknown>[]>(
      'select period_start, period_end, seq from billing_periods where subscription_id = ?::uuid and period_start <= ?::timestamptz and period_end > ?::timestamptz limit 1',
      [subscriptionId, at.toISOString(), at.toISOString()],
    );
    return rows.length ? toPeriod(rows[0]) : null;
  },

  async periodStarting(em: EntityManager, subscriptionId: string, start: Date): Promise<PeriodRow | null> {
    const rows = await em.execute<Record<string, unknown>[]>(
      'select period_start, period_end, seq from billing_periods where subscription_id = ?::uuid and period_start = ?::timestamptz',
      [subscriptionId, start.toISOString()],
    );
    return rows.length ? toPeriod(rows[0]) : null;
  },

  /** The latest period that has started by `at` (for a subscription that has ended). */
  async latestPeriod(em: EntityManager, subscriptionId: string, at: Date): Promise<PeriodRow | null> {
    const rows = await em.execute<Record<string, unknown>[]>(
      'select period_start, period_end, seq from billing_periods where subscription_id = ?::uuid and period_start <= ?::timestamptz order by period_start desc limit 1',
      [subscriptionId, at.toISOString()],
    );
    return rows.length ? toPeriod(rows[0]) : null;
  },
};

/** A subscriptions row (snake_case columns, as raw queries return them) as a SubscriptionRow. */
export function toSubscriptionRow(r: Record<string, unknown>): SubscriptionRow {
  const startedAt = toDate(r.started_at);
  return {
    id: r.id as string,
    organizationId: r.organization_id as string,
    customerId: r.customer_id as string,
    planVersionId: r.plan_version_id as string,
    status: String(r.status),
    startedAt,
    endsAt: r.ends_at == null ? null : toDate(r.ends_at),
    anchorDay: anchorDayOf(r.billing_anchor, startedAt),
    seats: r.seats == null ? 1 : Number(r.seats),
  };
}

function toPeriod(r: Record<string, unknown>): PeriodRow {
  return { start: toDate(r.period_start), end: toDate(r.period_end), seq: r.seq == null ? null : Number(r.seq) };
}
