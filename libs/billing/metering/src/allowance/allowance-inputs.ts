/**
 * Everything an allowance read needs from the database in one statement (one round trip, one
 * snapshot): the customer by id or external id, the subscription, the period, the rollups'
 * freshness and stored rows, the key of the subscription's terms (`termsKeySql`), when the caller
 * can fold them in the carried-in grants, and — only when events are waiting for the pair and the
 * period is small enough — the rollups recomputed from raw events by the rollup module's own SQL
 * (`rollupResultsCte`; a false condition on the pair leaves that part empty and costs nothing).
 * Plain rows; the rules stay with their owners (the service decides what is a 404, the engine turns
 * terms into segments, the rollup SQL decides what a rollup counts).
 */
import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { isUuid } from '@closebook/platform';
import type { AllowanceGrant } from '@closebook/rating';
import { rollupResultsCte } from '../rollups/rollup-sql';
import { toSubscriptionRow, type PeriodRow, type SubscriptionRow } from '../catalog/billing-sources';
import { toGrants, type GrantRow } from './allowance-grants';
import { termsKeySql } from './allowance-terms';

export interface StoredUsage {
  product_key: string;
  price_key: string;
  aggregate: string;
  event_count: string;
}

export interface AllowanceInputs {
  /** The customer `customerRef` names (null: none in the organization). */
  customerId: string | null;
  subscription: SubscriptionRow | null;
  /** The chosen period (null: none matches). */
  period: PeriodRow | null;
  /** When the pair was last rolled up (null: never). */
  computedAt: Date | null;
  dirty: boolean;
  /** The stored rollups, ordered by product key and price key (as `RollupsService.stored`). */
  stored: StoredUsage[];
  /** The rollups recomputed from raw events in this snapshot, or null when the stored ones are the answer. */
  live: StoredUsage[] | null;
  termsKey: string | null;
  /** Null when not folded in (`grantsSql` absent). */
  grants: AllowanceGrant[] | null;
  /** The statement's timestamp: `as_of` of an answer recomputed after it. */
  now: Date;
}

export interface AllowanceQuery {
  organizationId: string;
  customerRef: string;
  subscriptionId: string;
  /** A period start (UTC midnight), else the period containing `now`, else the latest one started by then. */
  periodStart: Date | null;
  now: Date;
  /** A jsonb expression over `s` (id, organization_id) and `p` (period_start): the grants (`TableAllowanceGrantsSource.foldable`). */
  grantsSql?: string | null;
  /** Recompute live only while the stored rollups count at most this many events. */
  liveMaxEvents: number;
}

/**
 * Runs a statement as a named prepared statement of the connection, so PostgreSQL plans it once per
 * connection (its generic plan after five custom ones) instead of on every read: planning the
 * rollup SQL costs ~10–20 ms, several times its execution for one pair. The text is constant per
 * variant, so the name is a digest of it. Inside a transaction the em's own connection is the one
 * that sees its snapshot, so there it is a plain `em.execute`.
 */
async function executePrepared(em: EntityManager, sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
  if (em.isInTransaction()) return em.execute<Record<string, unknown>[]>(sql, params);
  let n = 0;
  const text = sql.replace(/\?/g, () => `$${++n}`);
  if (n !== params.length) throw new Error(`allowance inputs: ${n} placeholders for ${params.length} parameters`);
  const name = `allowance_state_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
  const client = em.getConnection().getKnex().client as unknown as PoolClient;
  const conn = await client.acquireConnection();
  try {
    return (await conn.query({ name, text, values: params })).rows;
  } finally {
    await client.releaseConnection(conn);
  }
}

/** What knex's PostgreSQL client lends: a `pg` connection from its pool. */
interface PoolClient {
  acquireConnection(): Promise<{ query(q: { name: string; text: string; values: unknown[] }): Promise<{ rows: Record<string, unknown>[] }> }>;
  releaseConnection(conn: unknown): Promise<unknown>;
}

const toDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));

export async function loadAllowanceInputs(em: EntityManager, q: AllowanceQuery): Promise<AllowanceInputs> {
  const byId = isUuid(q.customerRef) ? q.customerRef : null;
  const start = q.periodStart?.toISOString() ?? null;
  const now = q.now.toISOString();
  const [r] = await executePrepared(
    em,
    // Customers: by id first, then by external id (CustomersService.get). Periods never overlap, so
    // "containing now, else the latest started" is the first by (contains now, start desc).
    // CTE names are a_*: the rollup SQL below brings its own (target, plans, meters, …).
    `with a_customer as (
       select coalesce((select id from customers where organization_id = ?::uuid and id = ?::uuid),
                       (select id from customers where organization_id = ?::uuid and external_id = ?)) as id
     ),
     a_sub as (
       select x.id, x.organization_id, x.customer_id, x.plan_version_id, x.status, x.started_at, x.ends_at, x.billing_anchor, x.seats,
              ${termsKeySql('x')} as terms_key
       from subscriptions x where x.organization_id = ?::uuid and x.id = ?::uuid
     ),
     a_period as (
       select bp.period_start, bp.period_end, bp.seq from billing_periods bp join a_sub on bp.subscription_id = a_sub.id
       where case when ?::timestamptz is null then bp.period_start <= ?::timestamptz else bp.period_start = ?::timestamptz end
       order by bp.period_end > ?::timestamptz desc, bp.period_start desc
       limit 1
     ),
     a_fresh as (
       select (select rp.computed_at from usage_rollup_periods rp where rp.subscription_id = s.id and rp.period_start = p.period_start) as computed_at,
              exists (select 1 from usage_rollup_dirty d where d.subscription_id = s.id and d.period_start = p.period_start) as dirty,
              (select coalesce(sum(u.event_count), 0) from usage_rollups u where u.subscription_id = s.id and u.period_start = p.period_start) as stored_events
       from a_sub s join a_period p on true
     ),
     -- The pair to recompute live: the customer's, with events waiting, not too big.
     a_live as (
       select s.id as subscription_id, p.period_start
       from a_sub s join a_period p on true join a_fresh f on true
       where s.customer_id = (select id from a_customer) and (f.dirty or f.computed_at is null) and f.stored_events <= ?
     ),
     ${rollupResultsCte('(bp.subscription_id, bp.period_start) in (select subscription_id, period_start from a_live)')}
     select c.id as customer_id, s.id, s.organization_id, s.customer_id as subscription_customer_id, s.plan_version_id, s.status,
            s.started_at, s.ends_at, s.billing_anchor, s.seats, s.terms_key,
            p.period_start, p.period_end, p.seq, f.computed_at, coalesce(f.dirty, false) as dirty,
            (select coalesce(json_agg(json_build_object('product_key', u.product_key, 'price_key', u.price_key,
                                                        'aggregate', u.aggregate::text, 'event_count', u.event_count::text)
                                      order by u.product_key, u.price_key), '[]'::json)
             from usage_rollups u where u.subscription_id = s.id and u.period_start = p.period_start) as stored,
            exists (select 1 from a_live) as is_live,
            (select coalesce(json_agg(json_build_object('product_key', r.product_key, 'price_key', r.price_key,
                                                        'aggregate', r.aggregate::text, 'event_count', r.event_count::text)
                                      order by r.product_key, r.price_key), '[]'::json)
             from results r) as live,
            ${q.grantsSql ? `case when p.period_start is not null then ${q.grantsSql} end` : 'null::jsonb'} as grants,
            statement_timestamp() as now
     from a_customer c left join a_sub s on true left join a_period p on true left join a_fresh f on true`,
    [q.organizationId, byId, q.organizationId, q.customerRef, q.organizationId, q.subscriptionId, start, now, start, now, q.liveMaxEvents],
  );
  // The customer's own id is `customer_id` in this row; the subscription's is `subscription_customer_id`.
  const subscription: SubscriptionRow | null = r.id == null ? null : toSubscriptionRow({ ...r, customer_id: r.subscription_customer_id });
  return {
    customerId: (r.customer_id as string | null) ?? null,
    subscription,
    period: r.period_start == null ? null : { start: toDate(r.period_start), end: toDate(r.period_end), seq: r.seq == null ? null : Number(r.seq) },
    computedAt: r.computed_at == null ? null : toDate(r.computed_at),
    dirty: r.dirty === true,
    stored: (r.stored as StoredUsage[] | null) ?? [],
    live: r.is_live === true ? ((r.live as StoredUsage[] | null) ?? []) : null,
    termsKey: (r.terms_key as string | null) ?? null,
    grants: q.grantsSql && r.period_start != null ? toGrants(r.grants as GrantRow[] | null) : null,
    now: toDate(r.now),
  };
}
