import type { EntityManager } from '@mikro-orm/postgresql';
import { dec } from '@closebook/money';
import { ACCOUNTS } from '@closebook/ledger';
import { decimalCell, minorUnits } from './cells';
import { POSTED_STATUSES } from './scope-sql';
import type { WorkbookScope, WorkbookSummaryLine } from './sheet-registry';

export const PASS = 'PASS';
export const FAIL = 'FAIL';
export const INFO = 'INFO';

const status = (ok: boolean) => (ok ? PASS : FAIL);

/** A decimal with the currency's digits: a number cell when a double holds it exactly, else its text (never rounded silently). */
const money = (v: string, currency: string) => decimalCell(dec(v).toFixed(minorUnits(currency)));

/**
 * The Summary's tie-outs, computed with set-based SQL in the export's snapshot (docs/exports.md):
 * 1. per currency, Σ invoice totals = Σ line amounts + Σ tax, and no invoice whose subtotal differs
 *    from its lines or whose total differs from subtotal + tax;
 * 2. per currency, Σ totals of posted invoices (finalized, paid) = net Accounts receivable
 *    (debits − credits) of the journal entries recording them (`source_type = 'invoice'`), and no
 *    posted invoice without an entry;
 * 3. Σ rollup event counts = the usage events those rollups cover, recounted from the events;
 * 4. the rollup counts the invoices billed (their snapshot) = the rollups now (late usage otherwise).
 */
export async function computeTieOuts(em: EntityManager, s: WorkbookScope): Promise<WorkbookSummaryLine[]> {
  const scope = [s.organizationId, s.from.toISOString(), s.to.toISOString()];
  const lines: WorkbookSummaryLine[] = [];

  const invoices = await em.execute<{ currency: string; n: string; total: string; tax: string; lines: string; mismatched: string }[]>(
    `select i.currency, count(*) as n, sum(i.total)::text as total, sum(i.tax_amount)::text as tax,
            coalesce(sum(l.amount), 0)::text as lines,
            count(*) filter (where i.subtotal <> coalesce(l.amount, 0) or i.subtotal + i.tax_amount <> i.total) as mismatched
     from invoices i
     left join lateral (select sum(x.amount) as amount from invoice_lines x where x.invoice_id = i.id) l on true
     where i.organization_id = ? and i.period_start >= ? and i.period_start < ?
     group by i.currency order by i.currency`,
    scope,
  );
  if (!invoices.length) lines.push({ label: 'Invoices in the period', expected: null, actual: 0, status: INFO, detail: 'no invoice has its period starting in the month' });
  for (const r of invoices) {
    const expected = dec(r.lines).plus(dec(r.tax));
    lines.push({
      label: `Σ invoice totals = Σ line amounts + Σ tax (${r.currency})`,
      expected: money(expected.toString(), r.currency),
      actual: money(r.total, r.currency),
      status: status(expected.eq(dec(r.total))),
      detail: `${r.n} invoice(s); lines ${r.lines}, tax ${r.tax}`,
    });
    lines.push({
      label: `Invoices whose subtotal ≠ their lines or total ≠ subtotal + tax (${r.currency})`,
      expected: 0,
      actual: Number(r.mismatched),
      status: status(Number(r.mismatched) === 0),
    });
  }

  const posted = await em.execute<{ currency: string; n: string; total: string; ar_minor: string; unposted: string }[]>(
    `with posted as (
       select i.id, i.currency, i.total from invoices i
       where i.organization_id = ? and i.period_start >= ? and i.period_start < ? and i.status in ${POSTED_STATUSES}
     ),
     ar as (
       select je.source_id, a.currency, sum(jl.debit) - sum(jl.credit) as net
       from journal_entries je
       join journal_lines jl on jl.entry_id = je.id
       join ledger_accounts a on a.id = jl.account_id and a.code = ?
       where je.organization_id = ? and je.source_type = 'invoice' and je.source_id in (select id::text from posted)
       group by je.source_id, a.currency
     )
     select p.currency, count(*) as n, sum(p.total)::text as total,
            coalesce(sum(ar.net), 0)::text as ar_minor,
            count(*) filter (where p.total <> 0 and not exists (select 1 from journal_entries je where je.organization_id = ? and je.source_type = 'invoice' and je.source_id = p.id::text)) as unposted
     from posted p left join ar on ar.source_id = p.id::text and ar.currency = p.currency
     group by p.currency order by p.currency`,
    [...scope, ACCOUNTS.ACCOUNTS_RECEIVABLE, s.organizationId, s.organizationId],
  );
  if (!posted.length) lines.push({ label: 'Posted invoices (finalized or paid)', expected: null, actual: 0, status: INFO, detail: 'no posted invoice in the period' });
  for (const r of posted) {
    const units = minorUnits(r.currency);
    const arMajor = dec(r.ar_minor).div(dec(10).pow(units));
    lines.push({
      label: `Σ posted invoice totals = ledger AR (${ACCOUNTS.ACCOUNTS_RECEIVABLE}) of their entries (${r.currency})`,
      expected: money(r.total, r.currency),
      actual: money(arMajor.toString(), r.currency),
      status: status(arMajor.eq(dec(r.total))),
      detail: `${r.n} posted invoice(s); AR net debits of journal entries with source_type 'invoice'`,
    });
    lines.push({ label: `Posted invoices without a ledger entry (${r.currency})`, expected: 0, actual: Number(r.unposted), status: status(Number(r.unposted) === 0), detail: 'a zero-total invoice moves no money and has no entry' });
  }

  const [usage] = await em.execute<{ rollups: string; rollup_events: string; covered_events: string; events: string; attributed: string }[]>(
    `with r as (
       select ur.subscription_id, ur.period_start, ur.period_end, ur.product_id, sum(ur.event_count) as n, count(*) as rows
       from usage_rollups ur where ur.organization_id = ? and ur.period_start >= ? and ur.period_start < ?
       group by ur.subscription_id, ur.period_start, ur.period_end, ur.product_id
     )
     select (select coalesce(sum(rows), 0) from r)::text as rollups,
            (select coalesce(sum(n), 0) from r)::text as rollup_events,
            (select count(*) from r
               join subscriptions s on s.id = r.subscription_id
               join products p on p.id = r.product_id
               join usage_events e on e.organization_id = s.organization_id and e.customer_id = s.customer_id
                    and e.ts >= greatest(r.period_start, s.started_at) and e.ts < least(r.period_end, coalesce(s.ends_at, 'infinity'::timestamptz))
                    and e.event_name = p.meter_event_name and e.properties @> coalesce(p.meter_filter, '{}'::jsonb)
               where case
                 when p.meter_aggregation = 'count' then true
                 when p.meter_aggregation = 'unique_count' then e.properties->>p.meter_property is not null
                 when jsonb_typeof(e.properties->p.meter_property) = 'number' then (e.properties->>p.meter_property)::numeric >= 0
                 when jsonb_typeof(e.properties->p.meter_property) = 'string' then e.properties->>p.meter_property ~ '^[0-9]+([.][0-9]+){0,1}$'
                 else false end
            )::text as covered_events,
            (select count(*) from usage_events e where e.organization_id = ? and e.ts >= ? and e.ts < ?)::text as events,
            (select count(*) from usage_events e where e.organization_id = ? and e.ts >= ? and e.ts < ?
               and exists (select 1 from subscriptions s where s.customer_id = e.customer_id and s.started_at <= e.ts and (s.ends_at is null or e.ts < s.ends_at)))::text as attributed`,
    [...scope, ...scope, ...scope],
  );
  lines.push({
    label: 'Σ rollup event counts = usage events the rollups cover (recounted)',
    expected: Number(usage.covered_events),
    actual: Number(usage.rollup_events),
    status: status(usage.covered_events === usage.rollup_events),
    detail: `${usage.rollups} rollup(s) of billing periods starting in the month; events recounted by each rollup's meter (name, filter, quantity) and window`,
  });
  lines.push({ label: 'Usage events timestamped in the month', expected: null, actual: Number(usage.events), status: INFO, detail: `${usage.attributed} attributable to a subscription in force at their timestamp` });

  const [billed] = await em.execute<{ n: string; billed: string; now: string; changed: string }[]>(
    `select count(*) as n, coalesce(sum(ir.event_count), 0)::text as billed, coalesce(sum(ur.event_count), 0)::text as now,
            count(*) filter (where ir.event_count <> ur.event_count or ir.digest <> ur.digest or ir.aggregate <> ur.aggregate) as changed
     from invoice_rollups ir
     join invoices i on i.id = ir.invoice_id
     join usage_rollups ur on ur.id = ir.rollup_id
     where i.organization_id = ? and i.period_start >= ? and i.period_start < ?`,
    scope,
  );
  lines.push({
    label: 'Rollups as billed (invoice snapshots) = rollups now',
    expected: Number(billed.now),
    actual: Number(billed.billed),
    status: status(Number(billed.changed) === 0),
    detail: `${billed.n} invoice–rollup link(s), ${billed.changed} changed since rating (late usage)`,
  });
  return lines;
}
