/**
 * Check 2, rollups → invoice lines (SPEC §6), for the period invoices dated in the month (not void;
 * populations.ts: the invoices of the billing periods that end in it):
 * - every usage line (`usage_included`, `usage_overage`) is replayed from its stored steps with the
 *   rating core's `replayLine` (the same arithmetic that rated it, never a second copy of the
 *   rules) → the replayed amount must equal the stored amount (item `line:{line id}`);
 * - every usage line is re-rated (rollups-lines-rerate.ts): its invoice's usage is rated again by the
 *   rating core from the input invoicing rebuilds read-only with the period-end rating's own reads
 *   (segments and pinned plan versions, live rollover grants) and the invoice's billed rollups; the
 *   quantity, allowance, fractions, rollover and prices its steps used must be the re-rating's, and
 *   the item's `expected` is the re-rated amount. A re-rated usage line with no stored line of its
 *   key is an item too (`missing_line:{invoice id}:{line key}`) — every invoice of the month is
 *   re-rated, whether it stores usage lines or not;
 * - the line has a trace (an invoice_rollups link) and every rollup it cites still matches the
 *   current usage_rollups row (count, aggregate, digest). A rollup that changed after
 *   finalization and whose current state is already recorded in late_usage is a `warn` with
 *   `details.late_usage` (it is handled as late usage, SPEC §3); a changed rollup of a draft is a
 *   `warn` too (the draft is re-rated before it finalizes);
 * - no rollup with events of a billing period ending in the month (and ended) is unbilled
 *   (no invoice_rollups link from a non-void period invoice): item `unbilled:{…}`.
 * Replay and re-rating are JS (pure functions), so lines are streamed in pages of invoices, the next
 * page read while this one is computed, and each page's results are written with one multi-row
 * insert; the unbilled rollups are one INSERT … SELECT. A line identical to its re-rating (steps,
 * quantity, unit amount, price) is not replayed again: the core has just computed those very steps.
 */
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec } from '@closebook/money';
import { replayLine, type PriceModel, type Step } from '@closebook/rating';
import { PeriodRatingService, type BilledUsageInput } from '@closebook/invoicing';
import { CheckFingerprints } from './fingerprints';
import { insertResults, monthBounds, summarize, type CheckContext, type CheckOutcome, type MonthBounds, type ReconciliationCheck } from './check';
import { withinTolerance, type ResultStatus } from './tolerance';
import { dayInMonth, dayInMonthParams, PERIOD_ENDS_IN_MONTH, periodEndsInMonthParams } from './populations';
import { compareWithRerate, identicalTwin, missingLines, rerateInvoice, type InvoiceRerate, type LineRerate, type StoredUsageLine } from './rollups-lines-rerate';

/** Invoices whose usage lines are replayed per page (~10 usage lines each in the close benchmark). */
export const ROLLUPS_LINES_INVOICES_PAGE = 200;
/** Invoices re-rated between two hand-backs of the thread (the next page's reads advance in between). */
const YIELD_EVERY_INVOICES = 20;

interface LineRow {
  id: string;
  invoice_id: string;
  invoice_status: string;
  subscription_id: string;
  customer_id: string;
  type: string;
  line_key: string;
  product_key: string | null;
  price_key: string | null;
  quantity: string;
  unit_amount: string | null;
  price: PriceModel | string | null;
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

interface PageInvoice {
  id: string;
  status: string;
  subscription_id: string;
  customer_id: string;
}

/** A page of the month's invoices: their usage lines and, when re-rating, their usage rating inputs. */
interface LinesPage {
  /** The last invoice id of the page (the next page starts after it). */
  after: string;
  last: boolean;
  /** The page's invoices (period invoices dated in the month, not void), in id order as the rows are. */
  invoices: PageInvoice[];
  rows: LineRow[];
  billed: Map<string, BilledUsageInput> | null;
}

/** `p`, with its rejection observed now (it is awaited later: an unobserved rejection would end the process meanwhile). */
function settled<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** One result row of the check, as its page is written (`jsonb_to_recordset`). */
interface ResultItem {
  item_key: string;
  expected: string;
  actual: string;
  variance: string;
  status: ResultStatus;
  currency: string;
  details: Record<string, unknown>;
  refs: Record<string, string>;
}

const parse = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

@Injectable()
export class RollupsLinesCheck implements ReconciliationCheck {
  readonly key = 'rollups_lines' as const;
  readonly itemType = 'billing_variance' as const;
  /** Invoices per page (a test pages one invoice at a time to show the pages add up to the whole). */
  invoicesPerPage = ROLLUPS_LINES_INVOICES_PAGE;
  /** Whether usage lines are re-rated (always, in production; a benchmark turns it off to time the rest alone). */
  rerate = true;

  constructor(
    private readonly fingerprints: CheckFingerprints,
    /** Invoicing's period rating, whose read-only builder rebuilds a billed invoice's rating input. */
    private readonly rating: PeriodRatingService,
  ) {}

  async run(em: EntityManager, ctx: CheckContext): Promise<CheckOutcome> {
    const fp = await this.fingerprints.current(em, ctx.organizationId, ctx.period, this.key);
    const b = monthBounds(ctx.period);
    let lines = 0;
    let rerated = 0;
    // Page n+1 is read while page n is replayed and re-rated (this thread's work): the reads go out on
    // the transaction's connection meanwhile (its statements queue there, one at a time, as ever).
    let next: Promise<LinesPage | null> | null = settled(this.readPage(em, ctx, b, '00000000-0000-0000-0000-000000000000'));
    try {
      while (next) {
        const page: LinesPage | null = await next;
        next = null;
        if (!page) break;
        if (!page.last) next = settled(this.readPage(em, ctx, b, page.after));
        if (!page.rows.length && !page.billed) continue;
        const items = await this.items(page, ctx);
        await insertResults(
          em,
          ctx,
          this,
          `select x.item_key, x.expected, x.actual, x.variance, x.status, x.currency, x.details, x.refs
           from jsonb_to_recordset(?::jsonb) as x(item_key text, expected numeric, actual numeric, variance numeric, status text, currency text, details jsonb, refs jsonb)`,
          [JSON.stringify(items)],
        );
        lines += page.rows.length;
        if (page.billed) rerated += page.billed.size;
      }
    } finally {
      // A failed page ends the check: the read in flight finishes before its transaction does.
      if (next) await next.catch(() => null);
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
       where bp.organization_id = ? and ${PERIOD_ENDS_IN_MONTH} and bp.period_end <= now()
         and u.event_count > 0
         and not exists (select 1 from invoice_rollups r join invoices i on i.id = r.invoice_id
                         where r.rollup_id = u.id and i.kind = 'period' and i.status <> 'void')`,
      [ctx.organizationId, ...periodEndsInMonthParams(b)],
    );
    const summary = await summarize(em, ctx.runId, this.key);
    return { ...summary, fingerprint: fp.fingerprint, inputs: { ...fp.inputs, usage_lines: lines, ...(this.rerate ? { rerated_invoices: rerated } : {}) } };
  }

  /**
   * One usage line: replay, trace, cited rollups, and — with its invoice's re-rating — the inputs
   * its steps used. Pure apart from its input row.
   */
  compare(r: LineRow, ctx: CheckContext, rerate?: InvoiceRerate): ResultItem {
    const raw = parse(r.steps);
    const steps = Array.isArray(raw) ? raw : [];
    const links = parse(r.links);
    const stored: StoredUsageLine = { line_key: r.line_key, type: r.type, product_key: r.product_key, price_key: r.price_key, quantity: r.quantity, unit_amount: r.unit_amount, price: parse(r.price), currency: r.currency, amount: r.amount, steps };
    // A line identical to its re-rating (the usual case) replays as the rating core just computed it.
    const twin = rerate ? identicalTwin(stored, rerate) : null;
    const replay = twin ? { ok: true, amount_exact: twin.amount_exact, amount: twin.amount, mismatches: [] } : replayLine(steps);
    const replayed = replay.amount ?? '0';
    let rerated: LineRerate | null = null;
    if (twin) rerated = { expected_amount: twin.amount, problems: [], differences: [] };
    else if (rerate) rerated = compareWithRerate(stored, rerate, replay.amount_exact);
    // Expected: what the line re-rates to (what the replay gives when it cannot be re-rated).
    const expected = rerated?.expected_amount ?? replayed;
    const variance = dec(r.amount).minus(dec(expected));
    const changed = links.filter(
      (l) => l.current_count === null || l.current_count !== l.billed_count || l.current_digest !== l.billed_digest || !dec(l.current_aggregate ?? '0').eq(dec(l.billed_aggregate)),
    );
    const lateOnly = changed.length > 0 && changed.every((l) => l.late_usage_id !== null);
    const problems: string[] = [];
    if (!replay.ok || replay.amount === null) problems.push('replay_mismatch');
    // The stored amount against its own steps' replay, within the tolerance.
    if (!withinTolerance(replayed, dec(r.amount).minus(dec(replayed)).toFixed(), ctx.tolerance)) problems.push('amount_variance');
    if (!links.length) problems.push('trace_missing');
    // The re-rating's differences are identities (a quantity, a price, an allowance): whatever the tolerance.
    if (rerated) problems.push(...rerated.problems);
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
        ...(rerated ? { differences: rerated.differences } : {}),
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

  /**
   * One keyset page of the month's invoices (not of their lines: each page reads only its own
   * invoices' lines, so the check is linear in lines — paging on line ids re-read every line of the
   * month for every page, 66 s instead of ~10 s at 10,000 subscriptions), their usage lines with
   * their rollup links, and — to re-rate them — the usage rating inputs of the invoices that have
   * usage lines (invoicing's read-only builder). Null past the last invoice.
   */
  private async readPage(em: EntityManager, ctx: CheckContext, b: MonthBounds, after: string): Promise<LinesPage | null> {
    const page = await em.execute<PageInvoice[]>(
      `select i.id, i.status, i.subscription_id, i.customer_id from invoices i
       where i.organization_id = ? and i.kind = 'period' and ${dayInMonth('i.issue_date')} and i.status <> 'void' and i.id > ?::uuid
       order by i.id limit ${this.invoicesPerPage}`,
      [ctx.organizationId, ...dayInMonthParams(b), after],
    );
    if (!page.length) return null;
    const rows = await em.execute<LineRow[]>(
      `select l.id, l.invoice_id, i.status as invoice_status, i.subscription_id, i.customer_id, l.type, l.line_key, l.product_key, l.price_key,
              l.quantity::text as quantity, l.unit_amount::text as unit_amount, l.price, l.amount::text as amount, l.currency, l.steps,
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
    // Every invoice of the page is re-rated, lines or not: a re-rating with usage lines where none is
    // stored is a line billed nowhere.
    const billed = this.rerate ? await this.rating.billedUsageInputs(em, page.map((i) => i.id)) : null;
    return { after: page[page.length - 1].id, last: page.length < this.invoicesPerPage, invoices: page, rows, billed };
  }

  /**
   * A page's results: each invoice re-rated (when the page carries its inputs), then each of its
   * usage lines compared, and its re-rated lines without a stored twin. The thread is handed back
   * every few invoices, so the next page's reads go on meanwhile.
   */
  private async items(page: LinesPage, ctx: CheckContext): Promise<ResultItem[]> {
    const out: ResultItem[] = [];
    const linesOf = new Map<string, LineRow[]>();
    for (const r of page.rows) linesOf.set(r.invoice_id, [...(linesOf.get(r.invoice_id) ?? []), r]);
    for (const [done, inv] of page.invoices.entries()) {
      const lines = linesOf.get(inv.id) ?? [];
      const rerate = page.billed ? rerateInvoice(page.billed.get(inv.id)) : undefined;
      for (const r of lines) out.push(this.compare(r, ctx, rerate));
      if (rerate) out.push(...this.missing(inv, lines, rerate));
      if ((done + 1) % YIELD_EVERY_INVOICES === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return out;
  }

  /** Re-rated usage lines that no stored line of their invoice answers (`missing_line:`): billed nowhere. */
  missing(inv: PageInvoice, lines: readonly LineRow[], rerate: InvoiceRerate): ResultItem[] {
    const invoiceId = inv.id;
    return missingLines(rerate, new Set(lines.map((x) => x.line_key))).map((l) => {
      const scale = (l.amount.split('.')[1] ?? '').length;
      return {
        item_key: `missing_line:${invoiceId}:${l.line_key}`,
        expected: l.amount,
        actual: dec(0).toFixed(scale),
        variance: dec(0).minus(dec(l.amount)).toFixed(scale),
        status: 'fail' as const,
        currency: l.currency,
        details: {
          problems: ['line_missing'],
          notes: [],
          line_type: l.type,
          line_key: l.line_key,
          product_key: l.product_key,
          price_key: l.price_key,
          invoice_status: inv.status,
          rerated_quantity: l.quantity,
          rerated_amount: l.amount,
        },
        refs: { invoice_id: invoiceId, subscription_id: inv.subscription_id, customer_id: inv.customer_id },
      };
    });
  }
}
