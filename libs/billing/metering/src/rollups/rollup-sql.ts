/**
 * The set-based SQL of rollups. One definition of "which events a rollup covers and what they
 * aggregate to" is shared by the write path (recompute), the read-only path (reconciliation, live
 * allowance state) and the tests.
 *
 * Attribution (docs/metering.md): an event belongs to subscription S and billing period P when its
 * customer is S's customer and P.period_start <= ts < P.period_end and S is in force at ts
 * (started_at <= ts < ends_at). Each meter (below) selects events with `event_name =
 * meter_event_name` whose properties contain every `meter_filter` pair (jsonb containment: typed
 * equality). Then:
 *   count         covers every selected event; aggregate = number of events
 *   sum/max       covers events whose property is a non-negative number (a JSON number or a decimal
 *                 string "12.5"); aggregate = exact numeric sum / max
 *   latest        same coverage; aggregate = the value of the event with the latest timestamp
 *                 (ties: the greatest event_id)
 *   unique_count  covers events whose property is present and not null; aggregate = number of
 *                 distinct values (compared as text: 1 and "1" are the same value)
 * The meters are the metered products of the plan versions in force at some point of the period
 * (a product dropped by a mid-period plan change still bills its usage at the last plan that had
 * it). The price key is the value, as text, of the property the plan version prices the product by
 * (its price_key_label; '' when the product is unkeyed or the event lacks it). Unkeyed meters always
 * get a row (zeros when nothing matched).
 *
 * Every statement here works on a set of (subscription, period) pairs — one pair for a read, a
 * page of pairs for the rollup worker and for reconciliation — so the rollup worker, the live
 * allowance state and the events→rollups check cannot disagree on what a rollup counts.
 */

export const NON_NEGATIVE_DECIMAL = `'^[0-9]+([.][0-9]+){0,1}$'`;

/**
 * What a meter takes from an event (aliases `m` for the meter, `e` for the event): `qty` for sum,
 * max and latest (a non-negative JSON number or decimal string, else null), `uniq` for unique_count.
 */
export const METER_VALUE_COLUMNS = `case when m.aggregation in ('sum', 'max', 'latest') then
           case jsonb_typeof(e.properties->m.property)
             when 'number' then (e.properties->m.property)::numeric
             when 'string' then case when e.properties->>m.property ~ ${NON_NEGATIVE_DECIMAL} then (e.properties->>m.property)::numeric end
           end
         end as qty,
         case when m.aggregation = 'unique_count' then e.properties->>m.property end as uniq`;

/**
 * From a `selected` CTE (product_id, product_key, aggregation, price_key, event_id, event_digest, ts,
 * qty, uniq, plus the `by` columns; event_digest is usage_events' stored digest term of event_id) to
 * `agg`: which events are covered, and count, aggregate and digest per
 * (by…, product, price key). One definition for one pair (`by` empty) and for many pairs at once
 * (reconciliation: `by` = subscription_id, period_start).
 */
export function aggregateCtes(by: readonly string[]): string {
  const k = by.map((c) => `${c}, `).join('');
  return `covered as (
  select * from selected
  where aggregation = 'count'
     or (aggregation = 'unique_count' and uniq is not null)
     or (aggregation in ('sum', 'max', 'latest') and qty >= 0)
),
sums as (
  select ${k}product_id, price_key, min(product_key) as product_key, min(aggregation) as aggregation,
         count(*)::bigint as event_count, sum(qty) as sum_qty, max(qty) as max_qty,
         coalesce(bit_xor(event_digest), 0)::bigint as digest
  from covered
  group by ${k}product_id, price_key
),
uniques as (
  select ${k}product_id, price_key, count(*)::numeric as n
  from (select distinct ${k}product_id, price_key, uniq from covered where aggregation = 'unique_count') u
  group by ${k}product_id, price_key
),
latest as (
  select distinct on (${k}product_id, price_key) ${k}product_id, price_key, qty
  from covered where aggregation = 'latest'
  order by ${k}product_id, price_key, ts desc, event_id desc
),
-- The three aggregates meet in one hash aggregate over their union rather than in joins: the planner
-- has no row counts for these CTEs (one row, it guesses) and joined them with nested loops that
-- re-aggregated \`uniques\` once per row of \`sums\` (a page of 500 subscriptions: 2.75 s -> 2.60 s).
parts as (
  select ${k}product_id, price_key, product_key, aggregation, event_count, sum_qty, max_qty, digest, null::numeric as uniques, null::numeric as latest_qty from sums
  union all
  select ${k}product_id, price_key, null, null, null, null, null, null, n, null from uniques
  union all
  select ${k}product_id, price_key, null, null, null, null, null, null, null, qty from latest
),
agg as (
  select ${k}product_id, price_key, max(product_key) as product_key, max(aggregation) as aggregation, max(event_count) as event_count,
         case max(aggregation)
           when 'count' then max(event_count)::numeric
           when 'sum' then coalesce(max(sum_qty), 0)
           when 'max' then coalesce(max(max_qty), 0)
           when 'unique_count' then coalesce(max(uniques), 0)
           when 'latest' then coalesce(max(latest_qty), 0)
         end as aggregate,
         max(digest) as digest
  from parts
  group by ${k}product_id, price_key
)`;
}

/**
 * Selects the (subscription, period) pairs of a rollup statement by their keys: parameters
 * [subscription ids (uuid[] literal), period starts (timestamptz[] literal)], element by element.
 */
export const PAIRS_BY_KEY = `(bp.subscription_id, bp.period_start) in (select * from unnest(?::uuid[], ?::timestamptz[]))`;

/**
 * The rollups of many (subscription, period) pairs at once, as `results` (subscription_id,
 * period_start, product_id, product_key, price_key, aggregation, event_count, aggregate, digest)
 * beside `target` (one row per pair). `pairs` is a SQL condition on `bp` (billing_periods) and `s`
 * (subscriptions) choosing the pairs; its parameters come after `until`'s when `until` is set (the
 * events before an instant only: the usage of a period so far, for accruals).
 *
 * The meters of a pair are the metered products of the plan versions in force over its period,
 * derived from the subscription's plan changes the way the subscriptions module cuts segments: the
 * version in force at the period start (the last non-canceled plan change effective at or before
 * it; before any change, the first change's previous version; without changes, the subscription's
 * version) plus the version of every non-canceled plan change effective inside the period.
 */
export function rollupResultsCte(pairs: string, opts: { until?: boolean } = {}): string {
  const until = opts.until ? ', ?::timestamptz' : '';
  return `
target as materialized (
  select s.id as subscription_id, s.organization_id, s.customer_id, s.plan_version_id,
         s.status, s.started_at, s.ends_at, s.billing_anchor, s.seats,
         bp.period_start, bp.period_end, bp.seq,
         greatest(bp.period_start, s.started_at) as lo,
         least(bp.period_end, coalesce(s.ends_at, 'infinity'::timestamptz)${until}) as hi
  from billing_periods bp
  join subscriptions s on s.id = bp.subscription_id and s.organization_id = bp.organization_id
  where ${pairs}
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
         e.event_id, e.event_digest, e.ts,
         ${METER_VALUE_COLUMNS}
  from target t
  join meters m on m.subscription_id = t.subscription_id and m.period_start = t.period_start
  -- One range of the (customer_id, event_name, ts) index per meter: each event is fetched once per
  -- meter of its name. Fenced (offset 0) so the planner keeps that shape whatever it guesses of
  -- \`meters\`; joined freely, it fetched a period's events once per meter and filtered them by name.
  cross join lateral (
    select e.event_id, e.event_digest, e.ts, e.properties from usage_events e
    where e.customer_id = t.customer_id and e.organization_id = t.organization_id and e.event_name = m.event_name
      and e.ts >= t.lo and e.ts < t.hi and e.properties @> m.filter
    offset 0
  ) e
),
${aggregateCtes(['subscription_id', 'period_start'])},
results as (
  select subscription_id, period_start, product_id, product_key, price_key, aggregation, event_count, aggregate, digest from agg
  union all
  select m.subscription_id, m.period_start, m.product_id, m.product_key, '', m.aggregation, 0::bigint, 0::numeric, 0::bigint
  from meters m
  where m.key_label is null
    -- NOT IN over non-null keys: a hashed subplan, where NOT EXISTS re-read \`agg\` once per meter.
    and (m.subscription_id, m.period_start, m.product_id) not in (select subscription_id, period_start, product_id from agg)
)`;
}

const COMPUTE_SELECT = `
select t.organization_id, t.subscription_id, t.period_start, t.period_end,
       r.product_id, r.product_key, r.price_key, r.aggregation,
       r.event_count::text as event_count, r.aggregate::text as aggregate, r.digest::text as digest
from target t join results r on r.subscription_id = t.subscription_id and r.period_start = t.period_start
order by t.subscription_id, t.period_start, r.product_key, r.price_key`;

/** Read-only: the rollups of pairs as they would be recomputed now. Parameters: as PAIRS_BY_KEY. */
export const COMPUTE_ROLLUPS_SQL = `with ${rollupResultsCte(PAIRS_BY_KEY)}${COMPUTE_SELECT}`;

/**
 * Read-only: the rollups of pairs counting only the events before an instant — the usage of a
 * period so far as of a month end (usage accruals). Parameters: [until, then as PAIRS_BY_KEY].
 */
export const COMPUTE_ROLLUPS_UNTIL_SQL = `with ${rollupResultsCte(PAIRS_BY_KEY, { until: true })}${COMPUTE_SELECT}`;

/**
 * Recomputes and upserts every rollup of the chosen pairs in one statement; rollups that no longer
 * cover anything (a product left the plan) are zeroed, never deleted, so their ids stay valid for
 * the invoice lines that point at them. Idempotent: any number of runs give the same rows. Rows are
 * written in key order, so two statements over overlapping pairs (the caller locks pairs; this is
 * the second line of defence) take their row locks in the same order.
 * Parameters: as PAIRS_BY_KEY. One row per pair found: its key, rollups written, events covered,
 * the subscription and period rows, and — when it covered any event — its usage as now stored
 * (every rollup with a quantity; the zeroed ones are zero), so the allowance thresholds need no re-read.
 */
export const RECOMPUTE_ROLLUPS_SQL = `
with ${rollupResultsCte(PAIRS_BY_KEY)},
upserted as (
  insert into usage_rollups (id, created_at, organization_id, subscription_id, period_start, period_end,
                             product_id, product_key, price_key, aggregation, event_count, aggregate, digest, computed_at)
  select gen_random_uuid(), statement_timestamp(), t.organization_id, t.subscription_id, t.period_start, t.period_end,
         r.product_id, r.product_key, r.price_key, r.aggregation, r.event_count, r.aggregate, r.digest, statement_timestamp()
  from target t join results r on r.subscription_id = t.subscription_id and r.period_start = t.period_start
  order by t.subscription_id, t.period_start, r.product_id, r.price_key
  on conflict (subscription_id, period_start, product_id, price_key) do update
    set period_end = excluded.period_end, product_key = excluded.product_key, aggregation = excluded.aggregation,
        event_count = excluded.event_count, aggregate = excluded.aggregate, digest = excluded.digest,
        computed_at = excluded.computed_at
  returning subscription_id, period_start
),
zeroed as (
  update usage_rollups u
     set event_count = 0, aggregate = 0, digest = 0, computed_at = statement_timestamp()
  from target t
  where u.subscription_id = t.subscription_id and u.period_start = t.period_start
    and not exists (select 1 from results r where r.subscription_id = u.subscription_id and r.period_start = u.period_start
                                              and r.product_id = u.product_id and r.price_key = u.price_key)
  returning u.subscription_id, u.period_start
),
period_state as (
  insert into usage_rollup_periods (subscription_id, period_start, organization_id, period_end, computed_at)
  select t.subscription_id, t.period_start, t.organization_id, t.period_end, statement_timestamp()
  from target t
  order by 1, 2
  on conflict (subscription_id, period_start) do update
    set period_end = excluded.period_end, computed_at = excluded.computed_at
  returning 1
),
written as (
  select subscription_id, period_start, count(*)::int as n from (select * from upserted union all select * from zeroed) w group by 1, 2
),
pair_events as (
  select subscription_id, period_start, sum(event_count) as n from results group by 1, 2
)
select t.subscription_id, t.period_start, coalesce(w.n, 0) as rollups, coalesce(c.n, 0)::text as covered,
       (select count(*) from period_state)::int as periods,
       t.organization_id, t.customer_id, t.plan_version_id, t.status, t.started_at, t.ends_at, t.billing_anchor, t.seats,
       t.period_end, t.seq,
       case when c.n > 0 then
         (select jsonb_agg(jsonb_build_object('product_key', r.product_key, 'price_key', r.price_key, 'quantity', r.aggregate::text))
          from results r where r.subscription_id = t.subscription_id and r.period_start = t.period_start)
       end as usage
from target t
left join written w on w.subscription_id = t.subscription_id and w.period_start = t.period_start
left join pair_events c on c.subscription_id = t.subscription_id and c.period_start = t.period_start
order by t.subscription_id, t.period_start`;

/** PostgreSQL array literals for PAIRS_BY_KEY (knex would expand a JavaScript array into a list). */
export function pairKeys(pairs: readonly { subscription_id: string; period_start: Date | string }[]): [string, string] {
  const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();
  return [`{${pairs.map((p) => p.subscription_id).join(',')}}`, `{${pairs.map((p) => `"${iso(p.period_start)}"`).join(',')}}`];
}
