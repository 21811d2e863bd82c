/**
 * Check 5, deferred revenue roll-forward (SPEC §6), per currency, on account 2200 (credit-positive):
 * - `rollforward:{currency}`: opening (before the month) + billed in advance (credits in the month)
 *   − recognized (debits in the month) = closing (balance at the month's last day);
 * - `schedules:{currency}`: the closing balance against Σ of what the deferral schedules (created
 *   by the month's end — billed on or before its last day, populations.ts — from 2200) still have to recognize after this month by their plan
 *   (`recognitionShares`, the ledger's own split). A recognition run that did not happen, or a
 *   fee posted to 2200 without its schedule, shows here.
 * The ledger sums are set-based; the schedules' planned shares are replayed in JS with the ledger's
 * pure `recognitionShares`, streaming only schedules not fully recognized by the month (pages of 5,000).
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Money } from '@closebook/money';
import { recognitionShares } from '@closebook/ledger';
import { CheckFingerprints } from './fingerprints';
import { currencyExponents, insertResults, monthBounds, summarize, type CheckContext, type CheckOutcome, type ReconciliationCheck } from './check';
import { toleranceStatusSql } from './tolerance';
import { DEFERRAL_SCHEDULES_CTE, deferralSchedulesParams } from './populations';

export const SCHEDULES_PAGE = 5000;

@Injectable()
export class DeferredRevenueCheck implements ReconciliationCheck {
  readonly key = 'deferred_revenue' as const;
  readonly itemType = 'deferred_revenue' as const;

  constructor(private readonly fingerprints: CheckFingerprints) {}

  async run(em: EntityManager, ctx: CheckContext): Promise<CheckOutcome> {
    const fp = await this.fingerprints.current(em, ctx.organizationId, ctx.period, this.key);
    const b = monthBounds(ctx.period);
    const exps = await currencyExponents(em, ctx.organizationId);

    // Planned remaining of every schedule still recognizing after the month, per currency (minor units).
    const planned = new Map<string, { remaining: bigint; schedules: number }>();
    let after = '00000000-0000-0000-0000-000000000000';
    let replayed = 0;
    for (;;) {
      const rows = await em.execute<{ id: string; currency: string; total_minor: string; service_start: string; service_end: string }[]>(
        `with ${DEFERRAL_SCHEDULES_CTE}
         select id, currency, total_minor::text as total_minor, to_char(service_start, 'YYYY-MM-DD') as service_start, to_char(service_end, 'YYYY-MM-DD') as service_end
         from schedules
         where final_period > ? and id > ?::uuid
         order by id limit ${SCHEDULES_PAGE}`,
        [...deferralSchedulesParams(ctx.organizationId, b, ctx.period), ctx.period, after],
      );
      for (const r of rows) {
        const total = Money.fromMinorUnits(r.total_minor, r.currency);
        let remaining = total.toMinorUnits();
        for (const s of recognitionShares(total, r.service_start, r.service_end)) if (s.period <= ctx.period) remaining -= s.amount.toMinorUnits();
        const cur = planned.get(r.currency) ?? { remaining: 0n, schedules: 0 };
        cur.remaining += remaining;
        cur.schedules++;
        planned.set(r.currency, cur);
      }
      replayed += rows.length;
      if (rows.length < SCHEDULES_PAGE) break;
      after = rows[rows.length - 1].id;
    }
    const plannedJson = JSON.stringify([...planned].map(([currency, p]) => ({ currency, remaining_minor: p.remaining.toString(), schedules: p.schedules })));

    const rfStatus = toleranceStatusSql('y.expected', '(y.actual - y.expected)', ctx.tolerance);
    await insertResults(
      em,
      ctx,
      this,
      `with dr as (
         select a.currency,
                coalesce(sum(l.credit - l.debit) filter (where e.entry_date < ?::date), 0) as opening,
                coalesce(sum(l.credit) filter (where e.entry_date >= ?::date), 0) as billed,
                coalesce(sum(l.debit) filter (where e.entry_date >= ?::date), 0) as recognized,
                coalesce(sum(l.credit - l.debit), 0) as closing
         from ledger_accounts a
         left join journal_lines l on l.account_id = a.id
         left join journal_entries e on e.id = l.entry_id
         where a.organization_id = ? and a.code = '2200' and (e.id is null or e.entry_date <= ?::date)
         group by a.currency
       ),
       plan as (
         select p.currency, p.remaining_minor::numeric as remaining, p.schedules
         from jsonb_to_recordset(?::jsonb) as p(currency text, remaining_minor text, schedules int)
       ),
       cur as (
         select coalesce(d.currency, p.currency) as currency, coalesce((?::jsonb->>coalesce(d.currency, p.currency))::int, 2) as exp,
                coalesce(d.opening, 0) as opening, coalesce(d.billed, 0) as billed, coalesce(d.recognized, 0) as recognized,
                coalesce(d.closing, 0) as closing, coalesce(p.remaining, 0) as remaining, coalesce(p.schedules, 0) as schedules
         from dr d full join plan p on p.currency = d.currency
       ),
       y as (
         select 'rollforward:' || c.currency as item_key,
                round((c.opening + c.billed - c.recognized)::numeric / power(10::numeric, c.exp), c.exp) as expected,
                round(c.closing::numeric / power(10::numeric, c.exp), c.exp) as actual, c.*
         from cur c
         union all
         select 'schedules:' || c.currency,
                round(c.remaining::numeric / power(10::numeric, c.exp), c.exp), round(c.closing::numeric / power(10::numeric, c.exp), c.exp), c.*
         from cur c
       )
       select y.item_key, y.expected, y.actual, y.actual - y.expected as variance, ${rfStatus} as status, y.currency,
              jsonb_build_object('as_of', ?::text, 'opening_minor', y.opening::text, 'billed_minor', y.billed::text,
                                 'recognized_minor', y.recognized::text, 'closing_minor', y.closing::text,
                                 'schedules_remaining_minor', y.remaining::text, 'schedules_open', y.schedules) as details,
              '{}'::jsonb as refs
       from y`,
      [b.firstDay, b.firstDay, b.firstDay, ctx.organizationId, b.lastDay, plannedJson, exps, b.lastDay],
    );
    const summary = await summarize(em, ctx.runId, this.key);
    return { ...summary, fingerprint: fp.fingerprint, inputs: { ...fp.inputs, schedules_replayed: replayed } };
  }
}
