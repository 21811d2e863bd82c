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
import { monthBounds } from './check';
import type { CheckKey } from './tolerance';

/** `bit_xor` of the first 64 bits of md5(expr), as text (0 for no rows). */
const digest = (expr: string) => `coalesce(bit_xor(('x' || md5(${expr}))::bit(64)::bigint), 0)::text`;

export interface Fingerprint {
  fingerprint: string;
  inputs: Record<string, unknown>;
}

type Params = { org: string; start: string; end: string; prevStart: string; lastDay: string; firstDay: string };

const SQL: Record<CheckKey, { sql: string; params: (p: Params) => unknown[] }> = {
  // Rollups of the periods overlapping the month, their subscriptions' terms, and the raw events
  // (append-only, deduplicated: a count in the periods' span sees every new event).
  events_rollups: {
    sql: `
      with periods as materialized (
        select bp.id, bp.subscription_id, bp.period_start, bp.period_end from billing_periods bp
        where bp.organization_id = ? and bp.period_start < ?::timestamptz and bp.period_end > ?::timestamptz),
      span as (select min(period_start) as lo, max(period_end) as hi from periods)
      select jsonb_build_object(
        'periods', (select count(*) from periods),
        'periods_digest', (select ${digest(`id::text || period_start::text || period_end::text`)} from periods),
        'subscriptions_digest', (select ${digest(`s.id::text || s.customer_id::text || s.started_at::text || coalesce(s.ends_at::text, '') || s.plan_version_id::text`)}
                                 from subscriptions s where s.id in (select subscription_id from periods)),
        'plan_changes_digest', (select ${digest(`c.id::text || c.effective_at::text || coalesce(c.canceled_at::text, '')`)}
                                from subscription_changes c where c.kind = 'plan' and c.subscription_id in (select subscription_id from periods)),
        'rollups', (select count(*) from usage_rollups u join periods p on p.subscription_id = u.subscription_id and p.period_start = u.period_start),
        'rollups_digest', (select ${digest(`u.id::text || u.event_count::text || u.aggregate::text || u.digest::text`)}
                           from usage_rollups u join periods p on p.subscription_id = u.subscription_id and p.period_start = u.period_start),
        'events', (select count(*) from usage_events e, span where e.organization_id = ?::uuid and e.ts >= span.lo and e.ts < span.hi)
      ) as inputs`,
    params: (p) => [p.org, p.end, p.start, p.org],
  },
  // The month's invoices (period starting in it), their usage lines' rollup links, the rollups of
  // the billing periods starting in it (and how many have ended) and late usage recorded on them.
  rollups_lines: {
    sql: `
      with inv as materialized (
        select i.id, i.status, i.content_hash, i.rating_count from invoices i
        where i.organization_id = ? and i.period_start >= ?::timestamptz and i.period_start < ?::timestamptz),
      periods as materialized (
        select bp.subscription_id, bp.period_start, bp.period_end from billing_periods bp
        where bp.organization_id = ? and bp.period_start >= ?::timestamptz and bp.period_start < ?::timestamptz)
      select jsonb_build_object(
        'invoices', (select count(*) from inv),
        'invoices_digest', (select ${digest(`id::text || status || content_hash || rating_count::text`)} from inv),
        'links', (select count(*) from invoice_rollups r where r.invoice_id in (select id from inv)),
        'links_digest', (select ${digest(`r.id::text`)} from invoice_rollups r where r.invoice_id in (select id from inv)),
        'rollups', (select count(*) from usage_rollups u join periods p on p.subscription_id = u.subscription_id and p.period_start = u.period_start),
        'rollups_digest', (select ${digest(`u.id::text || u.event_count::text || u.aggregate::text || u.digest::text`)}
                           from usage_rollups u join periods p on p.subscription_id = u.subscription_id and p.period_start = u.period_start),
        'ended_periods', (select count(*) from periods where period_end <= now()),
        'late_usage_digest', (select ${digest(`l.id::text || l.status`)} from late_usage l where l.invoice_id in (select id from inv))
      ) as inputs`,
    params: (p) => [p.org, p.start, p.end, p.org, p.start, p.end],
  },
  // Invoices finalized and credit notes created in the month, their entries, and every
  // receivables line up to the month's end.
  invoices_ledger: {
    sql: `
      with inv as materialized (
        select i.id, i.status, i.total from invoices i
        where i.organization_id = ? and i.finalized_at >= ?::timestamptz and i.finalized_at < ?::timestamptz),
      cn as materialized (
        select c.id, c.total from credit_notes c
        where c.organization_id = ? and c.created_at >= ?::timestamptz and c.created_at < ?::timestamptz),
      ar as materialized (
        select l.id, l.debit, l.credit from journal_lines l
        join ledger_accounts a on a.id = l.account_id
        join journal_entries e on e.id = l.entry_id
        where a.organization_id = ? and a.code = '1100' and e.entry_date <= ?::date)
      select jsonb_build_object(
        'invoices', (select count(*) from inv),
        'invoices_digest', (select ${digest(`id::text || status || total::text`)} from inv),
        'credit_notes', (select count(*) from cn),
        'credit_notes_digest', (select ${digest(`id::text || total::text`)} from cn),
        'entries_digest', (select ${digest(`e.id::text`)} from journal_entries e
                           where e.organization_id = ?::uuid and ((e.source_type = 'invoice' and e.source_id in (select id::text from inv))
                                                           or (e.source_type = 'credit_note' and e.source_id in (select id::text from cn)))),
        'ar_lines', (select count(*) from ar),
        'ar_debits', (select coalesce(sum(debit), 0)::text from ar),
        'ar_credits', (select coalesce(sum(credit), 0)::text from ar),
        'ar_digest', (select ${digest(`id::text`)} from ar)
      ) as inputs`,
    params: (p) => [p.org, p.start, p.end, p.org, p.start, p.end, p.org, p.lastDay, p.org],
  },
  // Billing periods ending in the month (and ended by now) and the period invoices of their subscriptions.
  completeness: {
    sql: `
      with periods as materialized (
        select bp.id, bp.subscription_id, bp.period_start, bp.period_end from billing_periods bp
        where bp.organization_id = ? and bp.period_end > ?::timestamptz and bp.period_end <= ?::timestamptz)
      select jsonb_build_object(
        'periods', (select count(*) from periods),
        'periods_digest', (select ${digest(`id::text || period_start::text || period_end::text`)} from periods),
        'ended_periods', (select count(*) from periods where period_end <= now()),
        'invoices_digest', (select ${digest(`i.id::text || i.status || coalesce(i.billing_period_id::text, '') || i.period_start::text`)}
                            from invoices i where i.kind = 'period' and i.subscription_id in (select subscription_id from periods))
      ) as inputs`,
    params: (p) => [p.org, p.start, p.end],
  },
  // Deferred revenue lines up to the month's end and the deferral schedules created by then.
  deferred_revenue: {
    sql: `
      with dr as materialized (
        select l.id, l.debit, l.credit from journal_lines l
        join ledger_accounts a on a.id = l.account_id
        join journal_entries e on e.id = l.entry_id
        where a.organization_id = ? and a.code = '2200' and e.entry_date <= ?::date),
      ds as materialized (
        select d.id, d.total_minor from deferral_schedules d where d.organization_id = ? and d.created_at < ?::timestamptz)
      select jsonb_build_object(
        'lines', (select count(*) from dr),
        'debits', (select coalesce(sum(debit), 0)::text from dr),
        'credits', (select coalesce(sum(credit), 0)::text from dr),
        'lines_digest', (select ${digest(`id::text`)} from dr),
        'schedules', (select count(*) from ds),
        'schedules_total', (select coalesce(sum(total_minor), 0)::text from ds),
        'schedules_digest', (select ${digest(`id::text`)} from ds)
      ) as inputs`,
    params: (p) => [p.org, p.lastDay, p.org, p.end],
  },
  // Revenue account lines of the month and the prior month; invoices finalized in both.
  flux: {
    sql: `
      with rev as materialized (
        select l.id, l.debit, l.credit from journal_lines l
        join ledger_accounts a on a.id = l.account_id
        join journal_entries e on e.id = l.entry_id
        where a.organization_id = ? and a.code in ('4000', '4100', '4200', '4300', '4900')
          and e.entry_date >= ?::date and e.entry_date <= ?::date),
      inv as materialized (
        select i.id, i.status from invoices i
        where i.organization_id = ? and i.finalized_at >= ?::timestamptz and i.finalized_at < ?::timestamptz)
      select jsonb_build_object(
        'revenue_lines', (select count(*) from rev),
        'revenue_debits', (select coalesce(sum(debit), 0)::text from rev),
        'revenue_credits', (select coalesce(sum(credit), 0)::text from rev),
        'revenue_digest', (select ${digest(`id::text`)} from rev),
        'invoices', (select count(*) from inv),
        'invoices_digest', (select ${digest(`id::text || status`)} from inv)
      ) as inputs`,
    params: (p) => [p.org, p.prevStart.slice(0, 10), p.lastDay, p.org, p.prevStart, p.end],
  },
};

/** sha256 of the canonical JSON of a check's inputs. */
export const fingerprintOf = (checkKey: string, inputs: Record<string, unknown>): string =>
  createHash('sha256').update(canonicalJson({ check: checkKey, inputs })).digest('hex');

@Injectable()
export class CheckFingerprints {
  /** The fingerprint of what `checkKey` would read now for the month. */
  async current(em: EntityManager, organizationId: string, period: string, checkKey: CheckKey): Promise<Fingerprint> {
    const b = monthBounds(period);
    const def = SQL[checkKey];
    const [row] = await em.execute<{ inputs: Record<string, unknown> | string }[]>(
      def.sql,
      def.params({ org: organizationId, start: b.start, end: b.end, prevStart: b.prevStart, lastDay: b.lastDay, firstDay: b.firstDay }),
    );
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
