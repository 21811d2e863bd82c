/**
 * Reads of the catalog and subscription tables metering depends on (owned by those modules):
 * products, plan_versions, customers, subscriptions, billing_periods. Plain SQL against their
 * documented columns, scoped by organization, so metering needs nothing but their schema.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import type { RatingPlanVersion } from '@closebook/rating';
import { NotFoundError } from '@closebook/platform';

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

export interface MeterRow {
  productId: string;
  key: string;
  name: string;
  eventName: string | null;
  aggregation: string | null;
  property: string | null;
  filter: Record<string, unknown> | null;
  priceKeyLabel: string | null;
  unit: string | null;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (s: string) => UUID_RE.test(s);

/** billing_anchor may be stored as a day number or as an instant; either way the usage cycle starts on its UTC day. */
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
    return toSubscription(rows[0]);
  },

  /** Without a tenant filter: for jobs, which carry ids that the database produced. */
  async subscriptionById(em: EntityManager, subscriptionId: string): Promise<SubscriptionRow | null> {
    const rows = await em.execute<Record<string, unknown>[]>(
      `select id, organization_id, customer_id, plan_version_id, status, started_at, ends_at, billing_anchor, seats
       from subscriptions where id = ?::uuid`,
      [subscriptionId],
    );
    return rows.length ? toSubscription(rows[0]) : null;
  },

  async planDocument(em: EntityManager, organizationId: string, planVersionId: string): Promise<RatingPlanVersion> {
    const rows = await em.execute<{ document: RatingPlanVersion }[]>('select document from plan_versions where organization_id = ? and id = ?::uuid', [
      organizationId,
      planVersionId,
    ]);
    if (!rows.length) throw new NotFoundError('plan version', planVersionId);
    return rows[0].document;
  },

  async meters(em: EntityManager, organizationId: string, keys: string[]): Promise<Map<string, MeterRow>> {
    if (!keys.length) return new Map();
    const rows = await em.execute<Record<string, unknown>[]>(
      `select id, key, name, meter_event_name, meter_aggregation, meter_property, meter_filter, price_key_label, unit
       from products where organization_id = ? and key in (select jsonb_array_elements_text(?::jsonb))`,
      [organizationId, JSON.stringify(keys)],
    );
    return new Map(
      rows.map((r) => [
        r.key as string,
        {
          productId: r.id as string,
          key: r.key as string,
          name: r.name as string,
          eventName: (r.meter_event_name as string | null) ?? null,
          aggregation: (r.meter_aggregation as string | null) ?? null,
          property: (r.meter_property as string | null) ?? null,
          filter: (r.meter_filter as Record<string, unknown> | null) ?? null,
          priceKeyLabel: (r.price_key_label as string | null) ?? null,
          unit: (r.unit as string | null) ?? null,
        },
      ]),
    );
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

function toSubscription(r: Record<string, unknown>): SubscriptionRow {
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
