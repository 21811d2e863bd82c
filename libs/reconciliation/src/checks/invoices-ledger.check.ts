/**
 * Check 3, invoices → ledger (SPEC §6): each document of the month (populations.ts: invoices dated
 * in it, status finalized or paid; credit notes created in it; any of them whose entry is dated in
 * it) has its journal entry (key `invoice:{id}` / `credit_note:{id}`) dated on the document's
 * accounting date (or later with `corrects_period` naming that month), the entry balances, its receivables lines name the document's customer, and
 * its receivables amount in minor units equals the document's total:
 * - invoice: Dr AR − Cr AR = total (a negative total credits AR); a zero total posts nothing;
 * - credit note: Cr AR + Cr Customer credits (2100) = total (2100 takes what the invoice no longer
 *   had due, e.g. when it was already paid).
 * Plus one item per currency, `ar_subledger:{currency}`: the AR control account's balance at the
 * month's end (expected) against Σ of the per-customer sub-ledger balances (actual).
 * Amounts are compared in minor units and reported in major units of the currency.
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CheckFingerprints } from './fingerprints';
import { currencyExponents, insertResults, monthBounds, summarize, type CheckContext, type CheckOutcome, type ReconciliationCheck } from './check';
import { toleranceStatusSql } from './tolerance';
import { LEDGER_DOCS_CTE, ledgerDocsParams } from './populations';

@Injectable()
export class InvoicesLedgerCheck implements ReconciliationCheck {
  readonly key = 'invoices_ledger' as const;
  readonly itemType = 'ledger_posting' as const;

  constructor(private readonly fingerprints: CheckFingerprints) {}

  async run(em: EntityManager, ctx: CheckContext): Promise<CheckOutcome> {
    const fp = await this.fingerprints.current(em, ctx.organizationId, ctx.period, this.key);
    const b = monthBounds(ctx.period);
    const exps = await currencyExponents(em, ctx.organizationId);
    const status = toleranceStatusSql('x.expected', '(x.actual - x.expected)', ctx.tolerance);
    await insertResults(
      em,
      ctx,
      this,
      `with ${LEDGER_DOCS_CTE},
       d as (
         select 'invoice' as kind, i.id, i.id as invoice_id, i.customer_id, i.subscription_id, i.currency, i.total as amount, i.number, 'invoice:' || i.id as key, i.status,
                i.issue_date as document_date
         from docs join invoices i on docs.kind = 'invoice' and i.id = docs.id
         union all
         select 'credit_note', c.id, c.invoice_id, c.customer_id, null::uuid, c.currency, c.total, c.number, 'credit_note:' || c.id, 'issued',
                (c.created_at at time zone 'UTC')::date
         from docs join credit_notes c on docs.kind = 'credit_note' and c.id = docs.id
       ),
       m as (
         select d.*, e.id as entry_id, e.source_type, e.source_id, e.entry_date, e.corrects_period,
                coalesce((?::jsonb->>d.currency)::int, 2) as exp,
                coalesce(s.lines, 0) as lines, coalesce(s.debits, 0) as debits, coalesce(s.credits, 0) as credits,
                coalesce(s.ar_net, 0) as ar_net, coalesce(s.cc_net, 0) as cc_net, coalesce(s.ar_wrong_party, 0) as ar_wrong_party
         from d
         left join journal_entries e on e.organization_id = ?::uuid and e.key = d.key
         left join lateral (
           select count(*) as lines, sum(l.debit) as debits, sum(l.credit) as credits,
                  sum(l.debit - l.credit) filter (where a.code = '1100') as ar_net,
                  sum(l.credit - l.debit) filter (where a.code = '2100') as cc_net,
                  count(*) filter (where a.code in ('1100', '2100') and l.party_id is distinct from d.customer_id) as ar_wrong_party
           from journal_lines l join ledger_accounts a on a.id = l.account_id
           where l.entry_id = e.id
         ) s on e.id is not null
       ),
       x as (
         select m.*, m.amount as expected,
                round((case m.kind when 'invoice' then m.ar_net else m.cc_net - m.ar_net end)::numeric / power(10::numeric, m.exp), m.exp) as actual
         from m
       )
       select x.kind || ':' || x.id as item_key, x.expected, x.actual, x.actual - x.expected as variance,
              case when x.entry_id is null then (case when x.expected = 0 then 'pass' else 'fail' end)
                   when x.debits <> x.credits or x.lines < 2 or x.ar_wrong_party > 0 or x.source_type <> x.kind or x.source_id <> x.id::text then 'fail'
                   -- Posted on its accounting date, or moved out of a closed month with corrects_period naming it.
                   when x.entry_date <> x.document_date and x.corrects_period is distinct from to_char(x.document_date, 'YYYY-MM') then 'fail'
                   else ${status} end as status,
              x.currency,
              jsonb_strip_nulls(jsonb_build_object(
                'document', x.kind, 'number', x.number, 'document_status', x.status, 'entry_key', x.key,
                'entry_missing', x.entry_id is null and x.expected <> 0, 'no_entry_expected', x.entry_id is null and x.expected = 0,
                'document_date', x.document_date, 'entry_date', x.entry_date, 'corrects_period', x.corrects_period,
                'dated_as_document', x.entry_id is null or x.entry_date = x.document_date or x.corrects_period = to_char(x.document_date, 'YYYY-MM'), 'lines', x.lines, 'debits_minor', x.debits::text, 'credits_minor', x.credits::text,
                'balanced', x.debits = x.credits, 'ar_minor', x.ar_net::text, 'customer_credits_minor', x.cc_net::text,
                'lines_with_wrong_party', x.ar_wrong_party)) as details,
              jsonb_strip_nulls(jsonb_build_object(
                'invoice_id', x.invoice_id, 'credit_note_id', case when x.kind = 'credit_note' then x.id end,
                'subscription_id', x.subscription_id, 'customer_id', x.customer_id, 'entry_id', x.entry_id)) as refs
       from x`,
      [...ledgerDocsParams(ctx.organizationId, b), exps, ctx.organizationId],
    );
    const subStatus = toleranceStatusSql('e.expected', '(e.actual - e.expected)', ctx.tolerance);
    await insertResults(
      em,
      ctx,
      this,
      `with parties as (
         select a.currency, l.party_id, sum(l.debit - l.credit) as balance
         from journal_lines l
         join ledger_accounts a on a.id = l.account_id
         join journal_entries e on e.id = l.entry_id
         where a.organization_id = ? and a.code = '1100' and e.entry_date <= ?::date
         group by a.currency, l.party_id
       ),
       y as (
         select currency, coalesce((?::jsonb->>currency)::int, 2) as exp,
                sum(balance) as control_minor, coalesce(sum(balance) filter (where party_id is not null), 0) as sub_minor,
                count(*) filter (where party_id is not null) as customers,
                count(*) filter (where party_id is not null and balance <> 0) as customers_with_balance
         from parties group by currency
       )
       select 'ar_subledger:' || y.currency as item_key, e.expected, e.actual, e.actual - e.expected as variance,
              ${subStatus} as status, y.currency,
              jsonb_build_object('as_of', ?::text, 'control_minor', y.control_minor::text, 'subledger_minor', y.sub_minor::text,
                                 'customers', y.customers, 'customers_with_balance', y.customers_with_balance) as details,
              '{}'::jsonb as refs
       from y cross join lateral (select round(y.control_minor::numeric / power(10::numeric, y.exp), y.exp) as expected,
                                         round(y.sub_minor::numeric / power(10::numeric, y.exp), y.exp) as actual) e`,
      [ctx.organizationId, b.lastDay, exps, b.lastDay],
    );
    const summary = await summarize(em, ctx.runId, this.key);
    return { ...summary, fingerprint: fp.fingerprint, inputs: fp.inputs };
  }
}
