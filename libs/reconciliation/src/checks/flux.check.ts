/**
 * Check 6, flux (SPEC §6): the month against the prior month, per currency —
 * - `account:{code}:{currency}` for each revenue account (4000, 4100, 4200, 4300, 4900): the net
 *   credit movement (credits − debits; contra-revenue is therefore negative) of entries dated in
 *   each month;
 * - `product:{product key}:{currency}`: Σ invoice line amounts per product of invoices dated
 *   in each month (their accounting date, `issue_date`) (status finalized or paid; lines without a product as `-`).
 * expected = prior month, actual = this month, variance = actual − expected. The percentage bound
 * is relative to |prior|; default tolerance 25 % or 1,000.00 (`either`): a line flags only when it
 * moved by more than both.
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CheckFingerprints } from './fingerprints';
import { currencyExponents, insertResults, monthBounds, summarize, type CheckContext, type CheckOutcome, type ReconciliationCheck } from './check';
import { toleranceStatusSql } from './tolerance';

export const REVENUE_ACCOUNTS = ['4000', '4100', '4200', '4300', '4900'];

@Injectable()
export class FluxCheck implements ReconciliationCheck {
  readonly key = 'flux' as const;
  readonly itemType = 'flux' as const;

  constructor(private readonly fingerprints: CheckFingerprints) {}

  async run(em: EntityManager, ctx: CheckContext): Promise<CheckOutcome> {
    const fp = await this.fingerprints.current(em, ctx.organizationId, ctx.period, this.key);
    const b = monthBounds(ctx.period);
    const exps = await currencyExponents(em, ctx.organizationId);
    const status = toleranceStatusSql('f.expected', '(f.actual - f.expected)', ctx.tolerance);
    await insertResults(
      em,
      ctx,
      this,
      `with acc as (
         select a.code, a.currency, a.name,
                coalesce(sum(l.credit - l.debit) filter (where e.entry_date >= ?::date), 0) as cur_minor,
                coalesce(sum(l.credit - l.debit) filter (where e.entry_date < ?::date), 0) as prior_minor,
                coalesce((?::jsonb->>a.currency)::int, 2) as exp
         from ledger_accounts a
         left join journal_lines l on l.account_id = a.id
         left join journal_entries e on e.id = l.entry_id
         where a.organization_id = ? and a.code in ('4000', '4100', '4200', '4300', '4900')
           and (e.id is null or (e.entry_date >= ?::date and e.entry_date <= ?::date))
         group by a.code, a.currency, a.name
       ),
       prod as (
         select coalesce(l.product_key, '-') as product_key, i.currency,
                coalesce(sum(l.amount) filter (where i.issue_date >= ?::date), 0) as cur,
                coalesce(sum(l.amount) filter (where i.issue_date < ?::date), 0) as prior,
                count(*) filter (where i.issue_date >= ?::date) as cur_lines,
                count(*) filter (where i.issue_date < ?::date) as prior_lines
         from invoices i join invoice_lines l on l.invoice_id = i.id
         where i.organization_id = ? and i.status in ('finalized', 'paid')
           and i.issue_date >= ?::date and i.issue_date <= ?::date
         group by 1, 2
       ),
       f as (
         select 'account:' || code || ':' || currency as item_key, currency,
                round(prior_minor::numeric / power(10::numeric, exp), exp) as expected,
                round(cur_minor::numeric / power(10::numeric, exp), exp) as actual,
                jsonb_build_object('kind', 'account', 'account_code', code, 'account_name', name) as details
         from acc
         union all
         select 'product:' || product_key || ':' || currency, currency, prior, cur,
                jsonb_build_object('kind', 'product', 'product_key', product_key, 'lines', cur_lines, 'prior_lines', prior_lines)
         from prod
       )
       select f.item_key, f.expected, f.actual, f.actual - f.expected as variance, ${status} as status, f.currency,
              f.details || jsonb_build_object('prior_period', ?::text,
                'percent_change', case when f.expected = 0 then null else round((f.actual - f.expected) * 100 / abs(f.expected), 2)::text end) as details,
              '{}'::jsonb as refs
       from f`,
      [b.firstDay, b.firstDay, exps, ctx.organizationId, b.prevStart.slice(0, 10), b.lastDay, b.firstDay, b.firstDay, b.firstDay, b.firstDay, ctx.organizationId, b.prevStart.slice(0, 10), b.lastDay, b.prevStart.slice(0, 7)],
    );
    const summary = await summarize(em, ctx.runId, this.key);
    return { ...summary, fingerprint: fp.fingerprint, inputs: fp.inputs };
  }
}
