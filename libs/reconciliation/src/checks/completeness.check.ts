/**
 * Check 4, completeness (SPEC §6): every billing period that ends in the month (end in
 * (month start, month end], and ended by now) has exactly one period invoice that is not void —
 * counted by its billing period and, independently, by the subscription and period dates (so a
 * second invoice for the same period reached by any other path is seen too). Item
 * `period:{subscription}:{period start}`; expected 1, actual the larger of both counts. A period
 * whose one invoice is still a draft is a `warn`. Counts are exact (the tolerance is not applied).
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CheckFingerprints } from './fingerprints';
import { PERIOD_ENDS_IN_MONTH, periodEndsInMonthParams } from './populations';
import { insertResults, monthBounds, summarize, type CheckContext, type CheckOutcome, type ReconciliationCheck } from './check';

@Injectable()
export class CompletenessCheck implements ReconciliationCheck {
  readonly key = 'completeness' as const;
  readonly itemType = 'completeness' as const;

  constructor(private readonly fingerprints: CheckFingerprints) {}

  async run(em: EntityManager, ctx: CheckContext): Promise<CheckOutcome> {
    const fp = await this.fingerprints.current(em, ctx.organizationId, ctx.period, this.key);
    const b = monthBounds(ctx.period);
    await insertResults(
      em,
      ctx,
      this,
      `with periods as (
         select bp.id, bp.subscription_id, bp.period_start, bp.period_end, s.customer_id, s.status as subscription_status
         from billing_periods bp join subscriptions s on s.id = bp.subscription_id
         where bp.organization_id = ? and ${PERIOD_ENDS_IN_MONTH} and bp.period_end <= now()
       ),
       c as (
         select p.*,
                (select count(*) from invoices i where i.billing_period_id = p.id and i.kind = 'period' and i.status <> 'void') as by_period,
                (select count(*) from invoices i where i.subscription_id = p.subscription_id and i.kind = 'period' and i.status <> 'void'
                   and i.period_start = p.period_start) as by_dates,
                (select count(*) from invoices i where i.subscription_id = p.subscription_id and i.kind = 'period' and i.status = 'draft'
                   and (i.billing_period_id = p.id or i.period_start = p.period_start)) as drafts,
                (select jsonb_agg(jsonb_build_object('id', i.id, 'status', i.status, 'number', i.number, 'billing_period_id', i.billing_period_id) order by i.created_at, i.id)
                 from invoices i where i.subscription_id = p.subscription_id and i.kind = 'period'
                   and (i.billing_period_id = p.id or i.period_start = p.period_start)) as invoices
         from periods p
       )
       select concat_ws(':', 'period', c.subscription_id, to_char(c.period_start at time zone 'UTC', 'YYYY-MM-DD')) as item_key,
              1::numeric as expected, greatest(c.by_period, c.by_dates)::numeric as actual, greatest(c.by_period, c.by_dates)::numeric - 1 as variance,
              case when c.by_period = 1 and c.by_dates = 1 then (case when c.drafts > 0 then 'warn' else 'pass' end) else 'fail' end as status,
              null::text as currency,
              jsonb_build_object('problem', case when c.by_period = 0 and c.by_dates = 0 then 'missing'
                                                 when c.by_period > 1 or c.by_dates > 1 then 'duplicate'
                                                 when c.by_period <> c.by_dates then 'mismatched_period' end,
                                 'billing_period_id', c.id, 'period_start', c.period_start, 'period_end', c.period_end,
                                 'by_billing_period', c.by_period, 'by_dates', c.by_dates, 'drafts', c.drafts,
                                 'subscription_status', c.subscription_status, 'invoices', coalesce(c.invoices, '[]'::jsonb)) as details,
              jsonb_build_object('subscription_id', c.subscription_id, 'customer_id', c.customer_id) as refs
       from c`,
      [ctx.organizationId, ...periodEndsInMonthParams(b)],
    );
    const summary = await summarize(em, ctx.runId, this.key);
    return { ...summary, fingerprint: fp.fingerprint, inputs: fp.inputs };
  }
}
