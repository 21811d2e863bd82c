/**
 * Check 1, events → rollups (SPEC §6): every rollup of the billing periods ending in the month is
 * recomputed from raw usage_events — count, aggregate and digest — and compared with the stored
 * row; events that a recompute covers but whose rollup row is missing fail too.
 *
 * The recompute is metering's own rollup SQL (libs/billing/metering/src/rollups/rollup-sql.ts,
 * `rollupResultsCte`), the statement the rollup worker writes with, chosen here for a page of
 * subscriptions at once (every period of each ending in the month). Read-only: nothing in
 * usage_rollups is touched. A test checks it against RollupsService.compute.
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CheckFingerprints } from './fingerprints';
import { insertResults, monthBounds, summarize, type CheckContext, type CheckOutcome, type ReconciliationCheck } from './check';
import { toleranceStatusSql } from './tolerance';
import { rollupResultsCte } from '@closebook/metering';
import { PERIOD_ENDS_IN_MONTH, periodEndsInMonthParams } from './populations';

/** Subscriptions recomputed per statement. */
export const EVENTS_ROLLUPS_PAGE = 500;

/**
 * Pages recomputed at once. The recompute reads the month's raw events again and is the longest
 * check by far; beside it the other checks finish early, so a second connection keeps both cores
 * busy until the end instead of one.
 */
export const EVENTS_ROLLUPS_LANES = 2;

/** The columns of a page's results, as the other lanes hand them to the check's transaction. */
const RESULT_RECORD = `item_key text, expected numeric, actual numeric, variance numeric, status text, currency text, details jsonb, refs jsonb`;

/** The billing periods ending in the month (populations.ts). Parameters: [organization_id, month start, month end, subscription ids (uuid[])]. */
export const BULK_ROLLUP_RESULTS_CTE = rollupResultsCte(`bp.organization_id = ?::uuid and ${PERIOD_ENDS_IN_MONTH} and bp.subscription_id = any(?::uuid[])`);

/** Read-only: the bulk recompute alone (tests compare it with RollupsService.compute). Same parameters. */
export const BULK_COMPUTE_ROLLUPS_SQL = `with ${BULK_ROLLUP_RESULTS_CTE}
select subscription_id, period_start, product_id, product_key, price_key, aggregation,
       event_count::text as event_count, aggregate::text as aggregate, digest::text as digest
from results order by subscription_id, period_start, product_key, price_key`;

@Injectable()
export class EventsRollupsCheck implements ReconciliationCheck {
  readonly key = 'events_rollups' as const;
  readonly itemType = 'usage_integrity' as const;
  /** Settable for tests: small pages over several lanes must give exactly one page's results. */
  subscriptionsPerPage = EVENTS_ROLLUPS_PAGE;
  lanes = EVENTS_ROLLUPS_LANES;

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
    const subs = await em.execute<{ id: string }[]>(
      `select distinct bp.subscription_id as id from billing_periods bp
       where bp.organization_id = ? and ${PERIOD_ENDS_IN_MONTH}
       order by 1`,
      [ctx.organizationId, ...periodEndsInMonthParams(b)],
    );
    const pages: string[] = [];
    for (let i = 0; i < subs.length; i += this.subscriptionsPerPage) pages.push(`{${subs.slice(i, i + this.subscriptionsPerPage).map((r) => r.id).join(',')}}`);
    const params = (ids: string) => [ctx.organizationId, ...periodEndsInMonthParams(b), ids];
    // The check's transaction writes every result; statements on its one connection go one at a time.
    let tail: Promise<unknown> = Promise.resolve();
    const inTransaction = <T>(fn: () => Promise<T>): Promise<T> => {
      const next = tail.then(fn);
      tail = next.catch(() => undefined);
      return next;
    };
    let next = 0;
    let failed = false;
    // Lane 0 recomputes into the results in the transaction; the others recompute on a connection of
    // their own (a read, so nothing to roll back there) and hand the page's rows over as one document.
    const lane = async (n: number) => {
      const own = n === 0 ? null : em.fork();
      while (!failed && next < pages.length) {
        const ids = pages[next++];
        try {
          if (!own) {
            await inTransaction(() => insertResults(em, ctx, this, select, params(ids)));
          } else {
            const [{ doc }] = await own.execute<{ doc: string }[]>(`select coalesce(json_agg(r), '[]')::text as doc from (${select}) r`, params(ids));
            await inTransaction(() => insertResults(em, ctx, this, `select * from jsonb_to_recordset(?::jsonb) as r(${RESULT_RECORD})`, [doc]));
          }
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    const settled = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(this.lanes, pages.length)) }, (_, n) => lane(n)));
    const error = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (error) throw error.reason;
    const summary = await summarize(em, ctx.runId, this.key);
    return { ...summary, fingerprint: fp.fingerprint, inputs: { ...fp.inputs, pages: pages.length } };
  }
}
