/**
 * Fingerprints of what each check reads (docs/reconciliation.md "Fingerprints"): a few counts, sums
 * and order-independent digests (`bit_xor` of md5-derived bigints) over the rows a check compares,
 * computed in one cheap SQL statement per check. A run stores each check's fingerprint (taken
 * before the check reads); the close gate calls `current(...)` and compares: equal → the data the
 * check saw has not changed since. The check and the gate use this one definition.
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createHash } from 'node:crypto';
import { canonicalJson } from '@closebook/platform';
import { rollupResultsCte } from '@closebook/metering';
import { monthBounds, type MonthBounds } from './check';
import { dayInMonth, dayInMonthParams, DEFERRAL_SCHEDULES_CTE, deferralSchedulesParams, LEDGER_DOCS_CTE, ledgerDocsParams, PERIOD_ENDS_IN_MONTH, periodEndsInMonthParams, STATUS_CLASS } from './populations';
import type { CheckKey } from './tolerance';

/** `bit_xor` of the first 64 bits of md5(expr), as text (0 for no rows). */
const digest = (expr: string) => `coalesce(bit_xor(('x' || md5(${expr}))::bit(64)::bigint), 0)::text`;

export interface Fingerprint {
  fingerprint: string;
  inputs: Record<string, unknown>;
}

type Params = { org: string; period: string; b: MonthBounds };

/**
 * Per check: the SQL of its inputs. Each returns `population` (how many items of the month the
 * check compares, populations.ts) and `documents` (documents of that kind the month has by another
 * road: a check whose population is empty while this is not is an error, never a pass), beside the
 * counts and digests that make the fingerprint. Inputs are chosen to be exactly the month's: what
 * happens in a later month (a plan change, a payment, a new period's events) changes none of them.
 */
const SQL: Record<CheckKey, { sql: string; params: (p: Params) => unknown[] }> = {
  // The billing periods ending in the month, as the rollups attribute them (bounds and the plan
  // versions in force: metering's own target and plans CTEs), their rollups and the raw events they
  // cover: the month's, and those before it of periods that began in an earlier month.
  events_rollups: {
    sql: `
      with ${rollupResultsCte(`bp.organization_id = ?::uuid and ${PERIOD_ENDS_IN_MONTH}`)}
      select jsonb_build_object(
        'population', (select count(*) from target),
        'documents', (select count(*) from invoices i where i.organization_id = ?::uuid and i.kind = 'period' and ${dayInMonth('i.issue_date')}),
        'periods_digest', (select ${digest(`subscription_id::text || period_start::text || period_end::text || lo::text || hi::text`)} from target),
        'plans_digest', (select ${digest(`subscription_id::text || period_start::text || coalesce(id::text, '')`)} from plans),
        'rollups', (select count(*) from usage_rollups u join target t on t.subscription_id = u.subscription_id and t.period_start = u.period_start),
        'rollups_digest', (select ${digest(`u.id::text || u.event_count::text || u.aggregate::text || u.digest::text`)}
                           from usage_rollups u join target t on t.subscription_id = u.subscription_id and t.period_start = u.period_start),
        'events_in_month', (select count(*) from usage_events e where e.organization_id = ?::uuid and e.ts >= ?::timestamptz and e.ts < ?::timestamptz),
        'events_before_month', (select coalesce(sum(x.n), 0) from target t
                                cross join lateral (select count(*) as n from usage_events e
                                                    where e.customer_id = t.customer_id and e.organization_id = t.organization_id
                                                      and e.ts >= t.lo and e.ts < least(t.hi, ?::timestamptz)) x
                                where t.lo < ?::timestamptz)
      ) as inputs`,
    params: ({ org, b }) => [org, ...periodEndsInMonthParams(b), org, ...dayInMonthParams(b), org, b.start, b.end, b.start, b.start],
  },
  // The usage lines of the period invoices dated in the month, their rollup links, the rollups of the
  // periods ending in it (and how many have ended), late usage recorded on them, and the plan, seat,
  // add-on and cancel changes effective inside those periods (what a re-rating reads).
  rollups_lines: {
    sql: `
      with inv as materialized (
        select i.id, i.status, i.content_hash, i.rating_count from invoices i
        where i.organization_id = ? and i.kind = 'period' and ${dayInMonth('i.issue_date')}),
      periods as materialized (
        select bp.subscription_id, bp.period_start, bp.period_end from billing_periods bp
        where bp.organization_id = ? and ${PERIOD_ENDS_IN_MONTH}),
      rollups as materialized (
        select u.id, u.event_count, u.aggregate, u.digest from usage_rollups u
        join periods p on p.subscription_id = u.subscription_id and p.period_start = u.period_start)
      select jsonb_build_object(
        'population', (select count(*) from invoice_lines l where l.invoice_id in (select id from inv where status <> 'void') and l.type in ('usage_included', 'usage_overage')),
        'documents', (select count(*) from rollups where event_count > 0),
        'invoices', (select count(*) from inv),
        'invoices_digest', (select ${digest(`id::text || ${STATUS_CLASS('status')} || content_hash || rating_count::text`)} from inv),
        'links', (select count(*) from invoice_rollups r where r.invoice_id in (select id from inv)),
        'links_digest', (select ${digest(`r.id::text`)} from invoice_rollups r where r.invoice_id in (select id from inv)),
        'rollups', (select count(*) from rollups),
        'rollups_digest', (select ${digest(`id::text || event_count::text || aggregate::text || digest::text`)} from rollups),
        'ended_periods', (select count(*) from periods where period_end <= now()),
        'late_usage_digest', (select ${digest(`l.id::text || l.event_count::text || l.digest::text`)} from late_usage l where l.invoice_id in (select id from inv)),
        'changes_digest', (select ${digest(`c.id::text || c.kind || c.effective_at::text`)} from subscription_changes c
                           join periods p on p.subscription_id = c.subscription_id
                           where c.canceled_at is null and c.effective_at >= p.period_start and c.effective_at < p.period_end),
        -- What re-rating reads besides the rollups: the rollover grants live in each period and what
        -- earlier periods drew from them (a re-rated earlier period changes both).
        'grants_digest', (select ${digest(`g.id::text || g."grant"::text`)} from allowance_grants g
                          where g.id in (select g.id from allowance_grants g join periods p on p.subscription_id = g.subscription_id
                                          where g.kind = 'rollover' and g.granted_in_period <= p.period_start and g.expires_after_period >= p.period_start)),
        'drawdowns_digest', (select ${digest(`d.id::text || d.drawn::text`)} from allowance_drawdowns d
                             where d.id in (select d.id from allowance_drawdowns d join periods p on p.subscription_id = d.subscription_id
                                             join allowance_grants g on g.subscription_id = d.subscription_id and g.grant_id = d.grant_id and g.kind = 'rollover'
                                              and g.granted_in_period <= p.period_start and g.expires_after_period >= p.period_start
                                            where d.period_start < p.period_start))
      ) as inputs`,
    params: ({ org, b }) => [org, ...dayInMonthParams(b), org, ...periodEndsInMonthParams(b)],
  },
  // The month's documents (populations.ts), their entries, and every receivables line dated up to the
  // month's end; guard: the period invoices of periods ending in the month, by their periods.
  invoices_ledger: {
    sql: `
      with ${LEDGER_DOCS_CTE},
      inv as materialized (select i.id, i.status, i.total from invoices i join docs d on d.kind = 'invoice' and d.id = i.id),
      cn as materialized (select c.id, c.total from credit_notes c join docs d on d.kind = 'credit_note' and d.id = c.id),
      ar as materialized (
        select l.id, l.debit, l.credit from journal_lines l
        join ledger_accounts a on a.id = l.account_id
        join journal_entries e on e.id = l.entry_id
        where a.organization_id = ? and a.code = '1100' and e.entry_date <= ?::date)
      select jsonb_build_object(
        'population', (select count(*) from docs),
        'documents', (select count(*) from invoices i join billing_periods bp on bp.id = i.billing_period_id
                      where i.organization_id = ?::uuid and i.kind = 'period' and i.status in ('finalized', 'paid') and ${PERIOD_ENDS_IN_MONTH}),
        'invoices', (select count(*) from inv),
        'invoices_digest', (select ${digest(`id::text || ${STATUS_CLASS('status')} || total::text`)} from inv),
        'credit_notes', (select count(*) from cn),
        'credit_notes_digest', (select ${digest(`id::text || total::text`)} from cn),
        'entries_digest', (select ${digest(`e.id::text`)} from journal_entries e join docs d on e.source_type = d.kind and e.source_id = d.id::text
                           where e.organization_id = ?::uuid),
        'ar_lines', (select count(*) from ar),
        'ar_debits', (select coalesce(sum(debit), 0)::text from ar),
        'ar_credits', (select coalesce(sum(credit), 0)::text from ar),
        'ar_digest', (select ${digest(`id::text`)} from ar)
      ) as inputs`,
    params: ({ org, b }) => [...ledgerDocsParams(org, b), org, b.lastDay, org, ...periodEndsInMonthParams(b), org],
  },
  // Billing periods ending in the month (and ended by now) and the period invoices of those periods.
  completeness: {
    sql: `
      with periods as materialized (
        select bp.id, bp.subscription_id, bp.period_start, bp.period_end from billing_periods bp
        where bp.organization_id = ? and ${PERIOD_ENDS_IN_MONTH})
      select jsonb_build_object(
        'population', (select count(*) from periods where period_end <= now()),
        'documents', (select count(*) from invoices i where i.organization_id = ?::uuid and i.kind = 'period' and ${dayInMonth('i.issue_date')}),
        'periods', (select count(*) from periods),
        'periods_digest', (select ${digest(`id::text || period_start::text || period_end::text`)} from periods),
        'invoices_digest', (select ${digest(`i.id::text || ${STATUS_CLASS('i.status')} || coalesce(i.billing_period_id::text, '') || i.period_start::text`)}
                            from invoices i join periods p on p.subscription_id = i.subscription_id
                            where i.kind = 'period' and (i.billing_period_id = p.id or i.period_start = p.period_start))
      ) as inputs`,
    params: ({ org, b }) => [org, ...periodEndsInMonthParams(b), org, ...dayInMonthParams(b)],
  },
  // Deferred revenue lines dated up to the month's end and the schedules billed by then still recognizing.
  deferred_revenue: {
    sql: `
      with ${DEFERRAL_SCHEDULES_CTE},
      dr as materialized (
        select l.id, l.debit, l.credit, e.entry_date from journal_lines l
        join ledger_accounts a on a.id = l.account_id
        join journal_entries e on e.id = l.entry_id
        where a.organization_id = ? and a.code = '2200' and e.entry_date <= ?::date)
      select jsonb_build_object(
        'population', (select count(*) from schedules),
        'documents', (select count(*) from dr where entry_date >= ?::date),
        'lines', (select count(*) from dr),
        'debits', (select coalesce(sum(debit), 0)::text from dr),
        'credits', (select coalesce(sum(credit), 0)::text from dr),
        'lines_digest', (select ${digest(`id::text`)} from dr),
        'schedules_total', (select coalesce(sum(total_minor), 0)::text from schedules),
        'schedules_digest', (select ${digest(`id::text`)} from schedules)
      ) as inputs`,
    params: ({ org, b, period }) => [...deferralSchedulesParams(org, b, period), org, b.lastDay, b.firstDay],
  },
  // Revenue account lines dated in the month and the prior month; the lines of the invoices dated in both.
  flux: {
    sql: `
      with rev as materialized (
        select l.id, l.debit, l.credit from journal_lines l
        join ledger_accounts a on a.id = l.account_id
        join journal_entries e on e.id = l.entry_id
        where a.organization_id = ? and a.code in ('4000', '4100', '4200', '4300', '4900')
          and e.entry_date >= ?::date and e.entry_date <= ?::date),
      inv as materialized (
        select i.id, i.status, i.total from invoices i
        where i.organization_id = ? and i.status in ('finalized', 'paid') and i.issue_date >= ?::date and i.issue_date <= ?::date)
      select jsonb_build_object(
        'population', (select count(*) from rev),
        'documents', (select count(*) from inv where total <> 0),
        'revenue_debits', (select coalesce(sum(debit), 0)::text from rev),
        'revenue_credits', (select coalesce(sum(credit), 0)::text from rev),
        'revenue_digest', (select ${digest(`id::text`)} from rev),
        'invoices', (select count(*) from inv),
        'invoices_digest', (select ${digest(`id::text`)} from inv)
      ) as inputs`,
    params: ({ org, b }) => [org, b.prevStart.slice(0, 10), b.lastDay, org, b.prevStart.slice(0, 10), b.lastDay],
  },
};

/** sha256 of the canonical JSON of a check's inputs. */
export const fingerprintOf = (checkKey: string, inputs: Record<string, unknown>): string =>
  createHash('sha256').update(canonicalJson({ check: checkKey, inputs })).digest('hex');

@Injectable()
export class CheckFingerprints {
  /** The fingerprint of what `checkKey` would read now for the month. */
  async current(em: EntityManager, organizationId: string, period: string, checkKey: CheckKey): Promise<Fingerprint> {
    const def = SQL[checkKey];
    const [row] = await em.execute<{ inputs: Record<string, unknown> | string }[]>(def.sql, def.params({ org: organizationId, period, b: monthBounds(period) }));
    const inputs = typeof row.inputs === 'string' ? (JSON.parse(row.inputs) as Record<string, unknown>) : row.inputs;
    return { fingerprint: fingerprintOf(checkKey, inputs), inputs };
  }

  /** Every check's current fingerprint. */
  async all(em: EntityManager, organizationId: string, period: string, checks: readonly CheckKey[]): Promise<Record<string, Fingerprint>> {
    const out: Record<string, Fingerprint> = {};
    for (const c of checks) out[c] = await this.current(em, organizationId, period, c);
    return out;
  }
}
