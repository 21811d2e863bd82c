/**
 * Check 1, events → rollups (SPEC §6): every rollup of the billing periods overlapping the month is
 * recomputed from raw usage_events — count, aggregate and digest — and compared with the stored
 * row; events that a recompute covers but whose rollup row is missing fail too.
 *
 * The recompute shares metering's rollup SQL (libs/billing/metering/src/rollups/rollup-sql.ts): the
 * same meter values (METER_VALUE_COLUMNS) and aggregations (aggregateCtes), but for a page
 * of subscriptions at once (every overlapping period of each), with the plan versions in force
 * over each period derived in SQL from the subscription's plan changes (the version at the period
 * start, plus every non-canceled plan change effective inside it — the subscriptions module's
 * segments). Read-only: nothing in usage_rollups is touched. A test checks it against
 * RollupsService.compute.
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CheckFingerprints } from './fingerprints';
import { insertResults, monthBounds, summarize, type CheckContext, type CheckOutcome, type ReconciliationCheck } from './check';
import { toleranceStatusSql } from './tolerance';
import { aggregateCtes, METER_VALUE_COLUMNS } from '@closebook/metering';

/** Subscriptions recomputed per statement. */
export const EVENTS_ROLLUPS_PAGE = 500;


/** Parameters: [organization_id, month end, month start, subscription ids (uuid[])]. */
export const BULK_ROLLUP_RESULTS_CTE = `
target as materialized (
  select s.id as subscription_id, s.organization_id, s.customer_id, s.plan_version_id,
         bp.period_start, bp.period_end,
         greatest(bp.period_start, s.started_at) as lo,
         least(bp.period_end, coalesce(s.ends_at, 'infinity'::timestamptz)) as hi
  from billing_periods bp
  join subscriptions s on s.id = bp.subscription_id and s.organization_id = bp.organization_id
  where bp.organization_id = ?::uuid and bp.period_start < ?::timestamptz and bp.period_end > ?::timestamptz
    and bp.subscription_id = any(?::uuid[])
),
plans as (
  select t.subscription_id, t.period_start, v.id
  from target t
  cross join lateral (
    select coalesce(
      (select (c.data->>'plan_version_id')::uuid from subscription_changes c
        where c.subscription_id = t.subscription_id and c.kind = 'plan' and c.canceled_at is null and c.effective_at <= t.period_start
        order by c.effective_at desc, c.created_at desc limit 1),
      (select (c.data->>'previous_plan_version_id')::uuid from subscription_changes c
        where c.subscription_id = t.subscription_id and c.kind = 'plan' and c.canceled_at is null
        order by c.effective_at asc, c.created_at asc limit 1),
      t.plan_version_id) as id
    union
    select (c.data->>'plan_version_id')::uuid from subscription_changes c
    where c.subscription_id = t.subscription_id and c.kind = 'plan' and c.canceled_at is null
      and c.effective_at > t.period_start and c.effective_at < t.period_end
  ) v
),
meters as materialized (
  select pl.subscription_id, pl.period_start,
         p.id as product_id, p.key as product_key, p.meter_event_name as event_name,
         p.meter_aggregation as aggregation, p.meter_property as property,
         coalesce(p.meter_filter, '{}'::jsonb) as filter,
         max(nullif(d->>'price_key_label', '')) as key_label
  from plans pl
  join target t on t.subscription_id = pl.subscription_id and t.period_start = pl.period_start
  join plan_versions pv on pv.organization_id = t.organization_id and pv.id = pl.id
  cross join lateral jsonb_array_elements(pv.document->'products') d
  join products p on p.organization_id = t.organization_id and p.key = d->>'product_key'
  where d->>'kind' = 'metered' and p.meter_event_name is not null
    and p.meter_aggregation in ('count', 'sum', 'max', 'unique_count', 'latest')
  group by pl.subscription_id, pl.period_start, p.id, p.key, p.meter_event_name, p.meter_aggregation, p.meter_property, p.meter_filter
),
selected as (
  select t.subscription_id, t.period_start, m.product_id, m.product_key, m.aggregation,
         coalesce(e.properties->>m.key_label, '') as price_key,
         e.event_id, e.ts,
         ${METER_VALUE_COLUMNS}
  from target t
  join usage_events e on e.customer_id = t.customer_id and e.organization_id = t.organization_id
                     and e.ts >= t.lo and e.ts < t.hi
  join meters m on m.subscription_id = t.subscription_id and m.period_start = t.period_start
               and m.event_name = e.event_name and e.properties @> m.filter
),
${aggregateCtes(['subscription_id', 'period_start'])},
results as (
  select subscription_id, period_start, product_id, product_key, price_key, aggregation, event_count, aggregate, digest from agg
  union all
  select m.subscription_id, m.period_start, m.product_id, m.product_key, '', m.aggregation, 0::bigint, 0::numeric, 0::bigint
  from meters m
  where m.key_label is null
    and not exists (select 1 from agg a where a.subscription_id = m.subscription_id and a.period_start = m.period_start and a.product_id = m.product_id)
)`;

/** Read-only: the bulk recompute alone (tests compare it with RollupsService.compute). Same parameters. */
export const BULK_COMPUTE_ROLLUPS_SQL = `with ${BULK_ROLLUP_RESULTS_CTE}
select subscription_id, period_start, product_id, product_key, price_key, aggregation,
       event_count::text as event_count, aggregate::text as aggregate, digest::text as digest
from results order by subscription_id, period_start, product_key, price_key`;

@Injectable()
export class EventsRollupsCheck implements ReconciliationCheck {
  readonly key = 'events_rollups' as const;
  readonly itemType = 'usage_integrity' as const;

  constructor(private readonly fingerprints: CheckFingerprints) {}

  async run(em: EntityManager, ctx: CheckContext): Promise<CheckOutcome> {
    const fp = await this.fingerprints.current(em, ctx.organizationId, ctx.period, this.key);
    const b = monthBounds(ctx.period);
    const status = toleranceStatusSql('c.expected_aggregate', '(c.actual_aggregate - c.expected_aggregate)', ctx.tolerance);
    const select = `
      with ${BULK_ROLLUP_RESULTS_CTE},
      stored as (
        select u.* from usage_rollups u
        join target t on t.subscription_id = u.subscription_id and t.period_start = u.period_start
      ),
      c as (
        select coalesce(r.subscription_id, u.subscription_id) as subscription_id,
               coalesce(r.period_start, u.period_start) as period_start,
               coalesce(r.product_key, u.product_key) as product_key,
               coalesce(r.price_key, u.price_key) as price_key,
               u.id as rollup_id,
               coalesce(r.event_count, 0) as expected_count, coalesce(u.event_count, 0) as actual_count,
               coalesce(r.aggregate, 0) as expected_aggregate, coalesce(u.aggregate, 0) as actual_aggregate,
               coalesce(r.digest, 0) as expected_digest, coalesce(u.digest, 0) as actual_digest,
               u.id is null as missing, r.product_id is null as not_recomputed
        from results r
        full join stored u on u.subscription_id = r.subscription_id and u.period_start = r.period_start
                          and u.product_id = r.product_id and u.price_key = r.price_key
      )
      select concat_ws(':', 'rollup', c.subscription_id, to_char(c.period_start at time zone 'UTC', 'YYYY-MM-DD'), c.product_key, coalesce(nullif(c.price_key, ''), '-')) as item_key,
             c.expected_aggregate as expected, c.actual_aggregate as actual, c.actual_aggregate - c.expected_aggregate as variance,
             case when c.missing or c.expected_count <> c.actual_count or c.expected_digest <> c.actual_digest then 'fail' else ${status} end as status,
             null::text as currency,
             jsonb_build_object('expected_count', c.expected_count::text, 'actual_count', c.actual_count::text,
                                'expected_digest', c.expected_digest::text, 'actual_digest', c.actual_digest::text,
                                'missing_rollup', c.missing, 'no_longer_covered', c.not_recomputed,
                                'period_start', c.period_start, 'product_key', c.product_key, 'price_key', c.price_key) as details,
             jsonb_strip_nulls(jsonb_build_object('subscription_id', c.subscription_id, 'rollup_id', c.rollup_id)) as refs
      from c
      where not (c.missing and c.expected_count = 0)`;
    let after = '00000000-0000-0000-0000-000000000000';
    let pages = 0;
    for (;;) {
      const subs = await em.execute<{ id: string }[]>(
        `select distinct bp.subscription_id as id from billing_periods bp
         where bp.organization_id = ? and bp.period_start < ?::timestamptz and bp.period_end > ?::timestamptz and bp.subscription_id > ?::uuid
         order by 1 limit ${EVENTS_ROLLUPS_PAGE}`,
        [ctx.organizationId, b.end, b.start, after],
      );
      if (!subs.length) break;
      const ids = `{${subs.map((s) => s.id).join(',')}}`;
      await insertResults(em, ctx, this, select, [ctx.organizationId, b.end, b.start, ids]);
      after = subs[subs.length - 1].id;
      pages++;
      if (subs.length < EVENTS_ROLLUPS_PAGE) break;
    }
    const summary = await summarize(em, ctx.runId, this.key);
    return { ...summary, fingerprint: fp.fingerprint, inputs: { ...fp.inputs, pages } };
  }
}
