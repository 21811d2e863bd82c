/**
 * Check 2, rollups → invoice lines (SPEC §6), for the invoices of the month (period starting in
 * it, not void):
 * - every usage line (`usage_included`, `usage_overage`) is replayed from its stored steps with the
 *   rating core's `replayLine` (the same arithmetic that rated it, never a second copy of the
 *   rules) → the replayed amount must equal the stored amount (item `line:{line id}`);
 * - the line has a trace (an invoice_rollups link) and every rollup it cites still matches the
 *   current usage_rollups row (count, aggregate, digest). A rollup that changed after
 *   finalization and whose current state is already recorded in late_usage is a `warn` with
 *   `details.late_usage` (it is handled as late usage, SPEC §3); a changed rollup of a draft is a
 *   `warn` too (the draft is re-rated before it finalizes);
 * - no rollup with events of a billing period starting in the month that has ended is unbilled
 *   (no invoice_rollups link from a non-void period invoice): item `unbilled:{…}`.
 * Replay is JS (a pure function), so lines are streamed in pages of invoices and each page's results are
 * written with one multi-row insert; the unbilled rollups are one INSERT … SELECT.
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec } from '@closebook/money';
import { replayLine, type Step } from '@closebook/rating';
import { CheckFingerprints } from './fingerprints';
import { insertResults, monthBounds, summarize, type CheckContext, type CheckOutcome, type ReconciliationCheck } from './check';
import { withinTolerance, type ResultStatus } from './tolerance';

/** Invoices whose usage lines are replayed per page (~10 usage lines each in the close benchmark). */
export const ROLLUPS_LINES_INVOICES_PAGE = 200;

interface LineRow {
  id: string;
  invoice_id: string;
  invoice_status: string;
  subscription_id: string;
  customer_id: string;
  type: string;
  product_key: string | null;
  price_key: string | null;
  amount: string;
  currency: string;
  steps: Step[] | string;
  links: LinkRow[] | string;
}

interface LinkRow {
  rollup_id: string;
  billed_count: string;
  billed_aggregate: string;
  billed_digest: string;
  current_count: string | null;
  current_aggregate: string | null;
  current_digest: string | null;
  late_usage_id: string | null;
}

const parse = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

@Injectable()
export class RollupsLinesCheck implements ReconciliationCheck {
  readonly key = 'rollups_lines' as const;
  readonly itemType = 'billing_variance' as const;
  /** Invoices per page (a test pages one invoice at a time to show the pages add up to the whole). */
  invoicesPerPage = ROLLUPS_LINES_INVOICES_PAGE;

  constructor(private readonly fingerprints: CheckFingerprints) {}

  async run(em: EntityManager, ctx: CheckContext): Promise<CheckOutcome> {
    const fp = await this.fingerprints.current(em, ctx.organizationId, ctx.period, this.key);
    const b = monthBounds(ctx.period);
    let after = '00000000-0000-0000-0000-000000000000';
    let lines = 0;
    for (;;) {
      // Keyset pages of the month's invoices (not of their lines): each page reads only its own
      // invoices' lines, so the check is linear in lines (paging on line ids re-read every line of
      // the month for every page: 66 s instead of ~10 s at 10,000 subscriptions).
      const page = await em.execute<{ id: string }[]>(
        `select i.id from invoices i
         where i.organization_id = ? and i.period_start >= ?::timestamptz and i.period_start < ?::timestamptz and i.status <> 'void' and i.id > ?::uuid
         order by i.id limit ${this.invoicesPerPage}`,
        [ctx.organizationId, b.start, b.end, after],
      );
      if (!page.length) break;
      after = page[page.length - 1].id;
      const rows = await em.execute<LineRow[]>(
        `select l.id, l.invoice_id, i.status as invoice_status, i.subscription_id, i.customer_id, l.type, l.product_key, l.price_key,
                l.amount::text as amount, l.currency, l.steps,
                coalesce((
                  select jsonb_agg(jsonb_build_object(
                    'rollup_id', r.rollup_id, 'billed_count', r.event_count::text, 'billed_aggregate', r.aggregate::text, 'billed_digest', r.digest::text,
                    'current_count', u.event_count::text, 'current_aggregate', u.aggregate::text, 'current_digest', u.digest::text,
                    'late_usage_id', (select lu.id from late_usage lu where lu.rollup_id = r.rollup_id and lu.invoice_id = i.id
                                        and lu.event_count = u.event_count and lu.digest = u.digest order by lu.created_at desc limit 1))
                    order by r.rollup_id)
                  from invoice_rollups r left join usage_rollups u on u.id = r.rollup_id
                  where r.invoice_line_id = l.id), '[]'::jsonb) as links
         from unnest(?::uuid[]) as p(id)
         join invoices i on i.id = p.id
         -- Each invoice's lines through the invoice_id index (fenced: the planner's row counts right after
         -- a month-end's writes can be far off, and a scan of every line per page is what this avoids).
         cross join lateral (select * from invoice_lines l where l.invoice_id = i.id and l.type in ('usage_included', 'usage_overage') offset 0) l
         order by i.id, l.position`,
        [`{${page.map((p) => p.id).join(',')}}`],
      );
      const last = page.length < this.invoicesPerPage;
      if (!rows.length) {
        if (last) break;
        continue;
      }
      const items = rows.map((r) => this.compare(r, ctx));
      await insertResults(
        em,
        ctx,
        this,
        `select x.item_key, x.expected, x.actual, x.variance, x.status, x.currency, x.details, x.refs
         from jsonb_to_recordset(?::jsonb) as x(item_key text, expected numeric, actual numeric, variance numeric, status text, currency text, details jsonb, refs jsonb)`,
        [JSON.stringify(items)],
      );
      lines += rows.length;
      if (last) break;
    }
    // Rollups with usage of ended billing periods starting in the month that no invoice bills.
    await insertResults(
      em,
      ctx,
      this,
      `select concat_ws(':', 'unbilled', u.subscription_id, to_char(u.period_start at time zone 'UTC', 'YYYY-MM-DD'), u.product_key, coalesce(nullif(u.price_key, ''), '-')) as item_key,
              u.aggregate as expected, 0::numeric as actual, -u.aggregate as variance, 'fail' as status, null::text as currency,
              jsonb_build_object('reason', 'rollup_unbilled', 'event_count', u.event_count::text, 'aggregate', u.aggregate::text, 'digest', u.digest::text,
                                 'period_start', u.period_start, 'period_end', u.period_end, 'product_key', u.product_key, 'price_key', u.price_key) as details,
              jsonb_build_object('subscription_id', u.subscription_id, 'rollup_id', u.id) as refs
       from billing_periods bp
       join usage_rollups u on u.subscription_id = bp.subscription_id and u.period_start = bp.period_start
       where bp.organization_id = ? and bp.period_start >= ?::timestamptz and bp.period_start < ?::timestamptz and bp.period_end <= now()
         and u.event_count > 0
         and not exists (select 1 from invoice_rollups r join invoices i on i.id = r.invoice_id
                         where r.rollup_id = u.id and i.kind = 'period' and i.status <> 'void')`,
      [ctx.organizationId, b.start, b.end],
    );
    const summary = await summarize(em, ctx.runId, this.key);
    return { ...summary, fingerprint: fp.fingerprint, inputs: { ...fp.inputs, usage_lines: lines } };
  }

  /** One usage line: replay, trace, cited rollups. Pure apart from its input row. */
  compare(r: LineRow, ctx: CheckContext) {
    const steps = parse(r.steps);
    const links = parse(r.links);
    const replay = replayLine(Array.isArray(steps) ? steps : []);
    const expected = replay.amount ?? '0';
    const variance = dec(r.amount).minus(dec(expected));
    const changed = links.filter(
      (l) => l.current_count === null || l.current_count !== l.billed_count || l.current_digest !== l.billed_digest || !dec(l.current_aggregate ?? '0').eq(dec(l.billed_aggregate)),
    );
    const lateOnly = changed.length > 0 && changed.every((l) => l.late_usage_id !== null);
    const problems: string[] = [];
    if (!replay.ok || replay.amount === null) problems.push('replay_mismatch');
    if (!withinTolerance(expected, variance.toFixed(), ctx.tolerance)) problems.push('amount_variance');
    if (!links.length) problems.push('trace_missing');
    const notes: string[] = [];
    if (changed.length) {
      if (lateOnly) notes.push('late_usage');
      else if (r.invoice_status === 'draft') notes.push('draft_stale');
      else problems.push('rollup_changed');
    }
    const status: ResultStatus = problems.length ? 'fail' : notes.length ? 'warn' : 'pass';
    return {
      item_key: `line:${r.id}`,
      expected,
      actual: r.amount,
      // Money in the line's own scale (its currency's minor units): "1.00", as expected and actual are.
      variance: variance.toFixed((r.amount.split('.')[1] ?? '').length),
      status,
      currency: r.currency,
      details: {
        problems,
        notes,
        line_type: r.type,
        product_key: r.product_key,
        price_key: r.price_key,
        invoice_status: r.invoice_status,
        replay_ok: replay.ok,
        replayed_amount_exact: replay.amount_exact,
        mismatches: replay.mismatches.slice(0, 10),
        rollups: links.map((l) => l.rollup_id),
        changed_rollups: changed.map((l) => ({
          rollup_id: l.rollup_id,
          billed: { count: l.billed_count, aggregate: l.billed_aggregate, digest: l.billed_digest },
          current: l.current_count === null ? null : { count: l.current_count, aggregate: l.current_aggregate, digest: l.current_digest },
          late_usage_id: l.late_usage_id,
        })),
        ...(lateOnly ? { late_usage: true } : {}),
      },
      refs: { invoice_id: r.invoice_id, invoice_line_id: r.id, subscription_id: r.subscription_id, customer_id: r.customer_id },
    };
  }
}
