import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec, getCurrency, isCurrencyCode, Money, type Currency } from '@closebook/money';
import { isUuid, NotFoundError, ValidationError } from '@closebook/platform';
import { replayLine, type Step } from '@closebook/rating';
import { renderSteps } from './step-text';
import type {
  EventJson,
  EventQuery,
  EventsPage,
  ExceptionJson,
  ExplainedStep,
  ExplanationDocument,
  LateUsageJson,
  LedgerEntryJson,
  PlanRef,
  QueueJson,
  RollupJson,
  SegmentJson,
} from './explanation.types';

const DAY = 86_400_000;
export const EVENTS_DEFAULT_LIMIT = 50;
export const EVENTS_MAX_LIMIT = 500;

/** An instant column as ISO 8601 UTC with milliseconds (the driver would hand back its own text form). */
const iso = (col: string) => `to_char(${col} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

const USAGE_TYPES = new Set(['usage_included', 'usage_overage']);
const FEE_TYPES = new Set(['base_fee', 'seat', 'addon']);
const CLOSED_STATUSES = new Set(['resolved', 'closed', 'waived', 'dismissed', 'canceled', 'cancelled', 'rejected', 'done']);

interface InvoiceRow {
  id: string;
  number: string | null;
  status: string;
  kind: string;
  customer_id: string;
  subscription_id: string;
  period_start: string;
  period_end: string;
  currency: string;
  total: string;
  finalized_at: string | null;
  rated_at: string;
  rating_input: RatingInputLike | null;
}

interface LineRow {
  id: string;
  position: number;
  line_key: string;
  type: string;
  product_key: string | null;
  price_key: string | null;
  period_start: string;
  period_end: string;
  quantity: string;
  unit_amount: string | null;
  tiers: unknown[] | null;
  price: unknown;
  amount_exact: string;
  amount: string;
  currency: string;
  description: string;
  proration: Record<string, unknown> | null;
  steps: Step[];
  meta: Record<string, unknown>;
  source_type: string | null;
  source_id: string | null;
}

interface PlanLike {
  plan_key: string;
  version?: number;
  name?: string;
  products?: { product_key: string; kind: string; price_key_label?: string | null }[];
}

interface RatingInputLike {
  period?: { start: string; end: string };
  segments?: { from: string; plan: PlanLike; seats?: number; transition?: string }[];
  next?: { plan: PlanLike };
}

interface ProductRow {
  id: string;
  key: string;
  unit: string | null;
  meter_event_name: string | null;
  meter_aggregation: string | null;
  meter_property: string | null;
  meter_filter: Record<string, unknown> | null;
  price_key_label: string | null;
}

interface RollupSpec {
  rollup_id: string;
  lo: string;
  hi: string;
  event_name: string;
  filter: Record<string, unknown>;
  key_label: string | null;
  price_key: string;
  aggregation: string;
  property: string | null;
  late_after: string;
}

interface Context {
  em: EntityManager;
  org: string;
  invoice: InvoiceRow;
  line: LineRow;
  currency: Currency;
}

function money(amount: string, currency: Currency): { amount: string; currency: string } {
  return { amount: dec(amount).toFixed(currency.minorUnits), currency: currency.code };
}

function currencyOf(code: string): Currency {
  return isCurrencyCode(code) ? getCurrency(code) : { code, minorUnits: 2 };
}

function encodeEventCursor(ts: string, id: string): string {
  return Buffer.from(JSON.stringify({ t: ts, id })).toString('base64url');
}

function decodeEventCursor(cursor: string | undefined): { t: string; id: string } | null {
  if (!cursor) return null;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof v?.t === 'string' && typeof v?.id === 'string' && !Number.isNaN(Date.parse(v.t))) return { t: v.t, id: v.id };
  } catch {
    /* fall through */
  }
  throw new ValidationError('invalid_cursor', 'cursor is not one this API returned', 'events_cursor');
}

function parseInstant(v: string | undefined, field: string): string | null {
  if (v === undefined) return null;
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new ValidationError('invalid_timestamp', `${field} must be an ISO 8601 timestamp`, field);
  return new Date(ms).toISOString();
}

const dayStart = (ms: number) => Math.floor(ms / DAY) * DAY;

/**
 * "What produced this charge?" (SPEC §7): one invoice line explained from what is stored — the
 * line and its steps exactly as rated (replayed with the rating core's `replayLine`, never
 * recomputed by a second copy of the rules), the plan versions and segments of its period, the
 * rollups it was rated from and the events they cover, its ledger entries, credit notes, late usage,
 * exceptions and disputes, and who owns the escalation. Reads only; raw SQL over the other modules'
 * tables (their data contracts: docs/invoicing.md, docs/metering.md, docs/ledger.md).
 */
@Injectable()
export class ExplanationService {
  async explain(em: EntityManager, organizationId: string, invoiceId: string, lineId: string, opts: { events?: EventQuery } = {}): Promise<ExplanationDocument> {
    const ctx = await this.load(em, organizationId, invoiceId, lineId);
    const { invoice, line, currency } = ctx;

    const [customer] = await em.execute<{ id: string; external_id: string; name: string }[]>(
      'select id, external_id, name from customers where organization_id = ? and id = ?',
      [organizationId, invoice.customer_id],
    );
    const [sub] = await em.execute<{ id: string; status: string; started_at: string; ends_at: string | null; plan_key: string; version: number; plan_version_id: string; plan_name: string }[]>(
      `select s.id, s.status, ${iso('s.started_at')} as started_at, ${iso('s.ends_at')} as ends_at, s.plan_version_id,
              p.key as plan_key, pv.version, p.name as plan_name
       from subscriptions s join plan_versions pv on pv.id = s.plan_version_id join plans p on p.id = pv.plan_id
       where s.organization_id = ? and s.id = ?`,
      [organizationId, invoice.subscription_id],
    );
    const product = line.product_key ? await this.product(em, organizationId, line.product_key) : null;

    const source = await this.source(ctx);
    const late = await this.lateUsage(ctx, source);
    const rollups = await this.rollups(ctx, late.rows);
    const events = await this.eventsOf(ctx, rollups.specs, rollups.list, opts.events ?? {});
    const segments = await this.segments(ctx, source);
    const plan = await this.planOf(ctx, source, sub, segments);
    const creditNotes = await this.creditNotes(ctx);
    const ledger = await this.ledger(ctx, creditNotes.map((c) => c.id));
    const exc = await this.exceptions(ctx, late.list.map((l) => l.id), late.originalInvoiceIds);

    const steps = this.explainSteps(line.steps, currency, product?.unit ?? null);
    const replay = replayLine(line.steps ?? []);
    const matches =
      replay.ok && replay.amount !== null && replay.amount_exact !== null && dec(replay.amount).eq(dec(line.amount)) && dec(replay.amount_exact).eq(dec(line.amount_exact));

    return {
      line: {
        id: line.id,
        position: line.position,
        line_key: line.line_key,
        type: line.type,
        description: line.description,
        product_key: line.product_key,
        price_key: line.price_key,
        period: { start: line.period_start, end: line.period_end },
        quantity: line.quantity,
        unit: product?.unit ?? null,
        unit_amount: line.unit_amount,
        tiers: line.tiers ?? null,
        amount_exact: line.amount_exact,
        amount: money(line.amount, currency),
        currency: currency.code,
        proration: line.proration ?? null,
        meta: line.meta ?? {},
      },
      invoice: {
        id: invoice.id,
        number: invoice.number,
        status: invoice.status,
        kind: invoice.kind,
        period: { start: invoice.period_start, end: invoice.period_end },
        currency: currency.code,
        total: money(invoice.total, currency),
        finalized_at: invoice.finalized_at,
      },
      customer: customer ?? { id: invoice.customer_id, external_id: '', name: '' },
      subscription: {
        id: invoice.subscription_id,
        status: sub?.status ?? 'unknown',
        started_at: sub?.started_at ?? '',
        ends_at: sub?.ends_at ?? null,
        plan,
        segments,
      },
      price: line.price ?? null,
      steps,
      replay: { matches_stored: matches, ok: replay.ok, amount_exact: replay.amount_exact, amount: replay.amount, stored_amount: dec(line.amount).toFixed(currency.minorUnits), mismatches: replay.mismatches },
      source,
      rollups: rollups.list,
      events,
      ledger,
      credit_notes: creditNotes.map(({ id, number, reason, created_at, quantity, amount, description }) => ({ id, number, reason, created_at, quantity, amount, description })),
      late_usage: late.list,
      exceptions: exc.exceptions,
      disputes: exc.disputes,
      exceptions_available: exc.available,
      escalation: exc.escalation,
      generated_at: new Date().toISOString(),
    };
  }

  /** The events that fed the line's rollups, alone (keyset pages of `events_limit`). */
  async events(em: EntityManager, organizationId: string, invoiceId: string, lineId: string, q: EventQuery): Promise<EventsPage> {
    const ctx = await this.load(em, organizationId, invoiceId, lineId);
    const source = await this.source(ctx);
    const late = await this.lateUsage(ctx, source);
    const rollups = await this.rollups(ctx, late.rows);
    return this.eventsOf(ctx, rollups.specs, rollups.list, q);
  }

  // ------------------------------------------------------------------------------------------
  // Loading

  private async load(em: EntityManager, org: string, invoiceId: string, lineId: string): Promise<Context> {
    if (!isUuid(org) || !isUuid(invoiceId)) throw new NotFoundError('invoice', String(invoiceId));
    if (!isUuid(lineId)) throw new NotFoundError('invoice line', String(lineId));
    const [invoice] = await em.execute<InvoiceRow[]>(
      `select id, number, status, kind, customer_id, subscription_id, ${iso('period_start')} as period_start, ${iso('period_end')} as period_end,
              currency, total::text as total, ${iso('finalized_at')} as finalized_at, ${iso('rated_at')} as rated_at, rating_input
       from invoices where organization_id = ? and id = ?`,
      [org, invoiceId],
    );
    if (!invoice) throw new NotFoundError('invoice', invoiceId);
    const [line] = await em.execute<LineRow[]>(
      `select id, position, line_key, type, product_key, price_key, ${iso('period_start')} as period_start, ${iso('period_end')} as period_end,
              quantity::text as quantity, unit_amount::text as unit_amount, tiers, price, amount_exact::text as amount_exact, amount::text as amount,
              currency, description, proration, steps, meta, source_type, source_id
       from invoice_lines where organization_id = ? and invoice_id = ? and id = ?`,
      [org, invoiceId, lineId],
    );
    if (!line) throw new NotFoundError('invoice line', lineId);
    return { em, org, invoice, line, currency: currencyOf(line.currency || invoice.currency) };
  }

  private async product(em: EntityManager, org: string, key: string): Promise<ProductRow | null> {
    const [p] = await em.execute<ProductRow[]>(
      'select id, key, unit, meter_event_name, meter_aggregation, meter_property, meter_filter, price_key_label from products where organization_id = ? and key = ?',
      [org, key],
    );
    return p ?? null;
  }

  private explainSteps(steps: Step[] | null | undefined, currency: Currency, unit: string | null): ExplainedStep[] {
    const list = Array.isArray(steps) ? steps : [];
    const texts = renderSteps(list, { currency, unit });
    return list.map((s, i) => ({ number: i + 1, ...s, text: texts[i] }));
  }

  // ------------------------------------------------------------------------------------------
  // Source records

  private async source(ctx: Context): Promise<Record<string, unknown> | null> {
    const { em, org, line } = ctx;
    if (!line.source_type || !line.source_id) return null;
    if (line.source_type === 'subscription_change') {
      const change = await this.change(em, org, line.source_id);
      return { type: 'subscription_change', id: line.source_id, subscription_change: change };
    }
    if (line.source_type === 'on_demand_charge') {
      const [charge] = await em.execute<Record<string, unknown>[]>(
        `select id, description, quantity::text as quantity, unit_amount::text as unit_amount, ${iso('date')} as date, product_key, ${iso('created_at')} as created_at
         from on_demand_charges where organization_id = ? and id = ?`,
        [org, line.source_id],
      );
      return { type: 'on_demand_charge', id: line.source_id, on_demand_charge: charge ?? null };
    }
    if (line.source_type === 'pending_item') {
      const [item] = await em.execute<{ id: string; kind: string; payload: Record<string, unknown>; billable_from: string; source_type: string; source_id: string; description: string; created_at: string }[]>(
        `select id, kind, payload, ${iso('billable_from')} as billable_from, source_type, source_id, description, ${iso('created_at')} as created_at
         from invoice_pending_items where organization_id = ? and id = ?`,
        [org, line.source_id],
      );
      if (!item) return { type: 'pending_item', id: line.source_id, pending_item: null };
      const out: Record<string, unknown> = {
        type: 'pending_item',
        id: item.id,
        pending_item: { id: item.id, kind: item.kind, billable_from: item.billable_from, source_type: item.source_type, source_id: item.source_id, description: item.description, created_at: item.created_at, payload: item.payload },
      };
      if (item.source_type === 'subscription_change' && isUuid(item.source_id)) out.subscription_change = await this.change(em, org, item.source_id);
      if (item.source_type === 'late_usage' && isUuid(item.source_id)) {
        out.late_usage_id = item.source_id;
        const [orig] = await em.execute<Record<string, unknown>[]>(
          `select i.id, i.number, i.status, i.kind, ${iso('i.period_start')} as period_start, ${iso('i.period_end')} as period_end, ${iso('i.finalized_at')} as finalized_at
           from late_usage l join invoices i on i.id = l.invoice_id where l.organization_id = ? and l.id = ?`,
          [org, item.source_id],
        );
        out.original_invoice = orig ?? null;
      }
      return out;
    }
    return { type: line.source_type, id: line.source_id };
  }

  private async change(em: EntityManager, org: string, id: string): Promise<Record<string, unknown> | null> {
    if (!isUuid(id)) return null;
    const [c] = await em.execute<Record<string, unknown>[]>(
      `select id, kind, ${iso('effective_at')} as effective_at, ${iso('applied_at')} as applied_at, ${iso('canceled_at')} as canceled_at, data, ${iso('created_at')} as created_at
       from subscription_changes where organization_id = ? and id = ?`,
      [org, id],
    );
    return c ?? null;
  }

  // ------------------------------------------------------------------------------------------
  // Late usage (of a usage line's rollups, or the one an adjustment line bills)

  private async lateUsage(ctx: Context, source: Record<string, unknown> | null): Promise<{ rows: LateRow[]; list: LateUsageJson[]; originalInvoiceIds: string[] }> {
    const { em, org, invoice, line } = ctx;
    let rows: LateRow[] = [];
    const select = `select l.id, l.status, l.invoice_id, ${iso('l.period_start')} as period_start, ${iso('l.period_end')} as period_end, l.product_key, l.price_key, l.rollup_id,
        l.billed_quantity::text as billed_quantity, l.previous_quantity::text as previous_quantity, l.quantity::text as quantity,
        l.quantity_delta::text as quantity_delta, l.amount::text as amount, l.currency, l.event_count::text as event_count, l.digest::text as digest,
        ${iso('l.created_at')} as created_at, l.steps,
        ${iso('coalesce(i.finalized_at, i.rated_at)')} as invoice_closed_at
      from late_usage l join invoices i on i.id = l.invoice_id`;
    const lateId = typeof source?.late_usage_id === 'string' ? source.late_usage_id : null;
    if (lateId) {
      rows = await em.execute<LateRow[]>(`${select} where l.organization_id = ? and l.id = ?`, [org, lateId]);
    } else if (USAGE_TYPES.has(line.type)) {
      rows = await em.execute<LateRow[]>(
        `${select} where l.organization_id = ? and l.invoice_id = ?
           and l.rollup_id in (select rollup_id from invoice_rollups where invoice_line_id = ?)
         order by l.created_at, l.id`,
        [org, invoice.id, line.id],
      );
    }
    const list: LateUsageJson[] = [];
    for (const r of rows) {
      const [billed] = await em.execute<{ pending_item_id: string; invoice_id: string | null; invoice_line_id: string | null }[]>(
        `select p.id as pending_item_id, il.invoice_id, il.id as invoice_line_id
         from invoice_pending_items p
         left join invoice_lines il on il.organization_id = p.organization_id and il.source_type = 'pending_item' and il.source_id = p.id
         where p.organization_id = ? and p.source_type = 'late_usage' and p.source_id = ?
         order by il.created_at nulls last limit 1`,
        [org, r.id],
      );
      const cur = currencyOf(r.currency);
      const rendered = (ls: { line_key: string; amount: string; steps: Step[] }[] | undefined) =>
        (ls ?? []).map((l) => ({ line_key: l.line_key, amount: l.amount, steps: this.explainSteps(l.steps, cur, null) }));
      list.push({
        id: r.id,
        status: r.status,
        invoice_id: r.invoice_id,
        period_start: r.period_start,
        period_end: r.period_end,
        product_key: r.product_key,
        price_key: r.price_key === '' ? null : r.price_key,
        rollup_id: r.rollup_id,
        billed_quantity: r.billed_quantity,
        previous_quantity: r.previous_quantity,
        quantity: r.quantity,
        quantity_delta: r.quantity_delta,
        amount: money(r.amount, cur),
        event_count: r.event_count,
        digest: r.digest,
        detected_at: r.created_at,
        rerating: { current: rendered(r.steps?.current), previous: rendered(r.steps?.previous), error: r.steps?.error ?? null },
        billed_by: billed ?? null,
      });
    }
    return { rows, list, originalInvoiceIds: [...new Set(rows.map((r) => r.invoice_id))] };
  }

  // ------------------------------------------------------------------------------------------
  // Rollups and events

  private async rollups(ctx: Context, late: LateRow[]): Promise<{ list: RollupJson[]; specs: RollupSpec[] }> {
    const { em, org, invoice, line } = ctx;
    const wanted: { rollup_id: string; via: 'line' | 'late_usage'; at_invoice: string; late_after: string }[] = [];
    if (USAGE_TYPES.has(line.type)) {
      const rows = await em.execute<{ rollup_id: string }[]>('select distinct rollup_id from invoice_rollups where organization_id = ? and invoice_line_id = ?', [org, line.id]);
      for (const r of rows) wanted.push({ rollup_id: r.rollup_id, via: 'line', at_invoice: invoice.id, late_after: invoice.finalized_at ?? invoice.rated_at });
    }
    for (const l of late) {
      if (line.type === 'adjustment' && !wanted.some((w) => w.rollup_id === l.rollup_id)) {
        wanted.push({ rollup_id: l.rollup_id, via: 'late_usage', at_invoice: l.invoice_id, late_after: l.invoice_closed_at });
      }
    }
    const list: RollupJson[] = [];
    const specs: RollupSpec[] = [];
    for (const w of wanted) {
      const [u] = await em.execute<{
        id: string; subscription_id: string; product_id: string; product_key: string; price_key: string; aggregation: string;
        period_start: string; period_end: string; event_count: string; aggregate: string; digest: string; computed_at: string;
        lo: string; hi: string; event_name: string | null; meter_filter: Record<string, unknown> | null; meter_property: string | null; price_key_label: string | null;
      }[]>(
        `select u.id, u.subscription_id, u.product_id, u.product_key, u.price_key, u.aggregation, ${iso('u.period_start')} as period_start, ${iso('u.period_end')} as period_end,
                u.event_count::text as event_count, u.aggregate::text as aggregate, u.digest::text as digest, ${iso('u.computed_at')} as computed_at,
                ${iso('greatest(u.period_start, s.started_at)')} as lo, ${iso("least(u.period_end, coalesce(s.ends_at, 'infinity'::timestamptz))")} as hi,
                p.meter_event_name as event_name, p.meter_filter, p.meter_property, p.price_key_label
         from usage_rollups u
         join subscriptions s on s.id = u.subscription_id
         left join products p on p.id = u.product_id
         where u.organization_id = ? and u.id = ?`,
        [org, w.rollup_id],
      );
      const [rated] = await em.execute<{ event_count: string; aggregate: string; digest: string }[]>(
        'select event_count::text as event_count, aggregate::text as aggregate, digest::text as digest from invoice_rollups where invoice_id = ? and rollup_id = ? order by invoice_line_id nulls last limit 1',
        [w.at_invoice, w.rollup_id],
      );
      if (!u) continue;
      const keyLabel = u.price_key !== '' ? (u.price_key_label ?? this.keyLabelFromPlans(invoice.rating_input, u.product_key)) : null;
      const now = { event_count: u.event_count, aggregate: u.aggregate, digest: u.digest, computed_at: u.computed_at };
      list.push({
        rollup_id: u.id,
        product_key: u.product_key,
        price_key: u.price_key === '' ? null : u.price_key,
        aggregation: u.aggregation,
        meter: { event_name: u.event_name, filter: u.meter_filter ?? {}, property: u.meter_property, price_key_label: keyLabel },
        period_start: u.period_start,
        period_end: u.period_end,
        at_rating: rated ?? null,
        now,
        changed_since_rating: !!rated && (rated.event_count !== now.event_count || rated.digest !== now.digest || !dec(rated.aggregate).eq(dec(now.aggregate))),
        via: w.via,
      });
      if (u.event_name) {
        specs.push({
          rollup_id: u.id,
          lo: u.lo,
          hi: u.hi,
          event_name: u.event_name,
          filter: u.meter_filter ?? {},
          key_label: keyLabel,
          price_key: u.price_key,
          aggregation: u.aggregation,
          property: u.meter_property,
          late_after: w.late_after,
        });
      }
    }
    return { list, specs };
  }

  private keyLabelFromPlans(input: RatingInputLike | null, productKey: string): string | null {
    for (const seg of [...(input?.segments ?? [])].reverse()) {
      const p = seg.plan?.products?.find((x) => x.product_key === productKey);
      if (p?.price_key_label) return p.price_key_label;
    }
    return null;
  }

  private async eventsOf(ctx: Context, specs: RollupSpec[], rollups: RollupJson[], q: EventQuery): Promise<EventsPage> {
    const total = rollups.reduce((a, r) => a.plus(dec(r.now?.event_count ?? '0')), dec(0)).toFixed();
    const limit = q.limit ?? EVENTS_DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > EVENTS_MAX_LIMIT) throw new ValidationError('invalid_limit', `events limit must be 1..${EVENTS_MAX_LIMIT}`, 'events_limit');
    const cursor = decodeEventCursor(q.cursor);
    const from = parseInstant(q.from, 'events_from');
    const to = parseInstant(q.to, 'events_to');
    if (!specs.length) return { total, data: [], next_cursor: null };
    const rows = await ctx.em.execute<{ event_id: string; event_name: string; ts: string; received_at: string; properties: Record<string, unknown>; rollup_id: string; late: boolean }[]>(
      `with specs as (
         select * from jsonb_to_recordset(?::jsonb) as x(rollup_id uuid, lo timestamptz, hi timestamptz, event_name text, filter jsonb,
                                                        key_label text, price_key text, aggregation text, property text, late_after timestamptz)
       )
       select e.event_id, e.event_name, ${iso('e.ts')} as ts, ${iso('e.received_at')} as received_at, e.properties, s.rollup_id,
              (e.received_at > s.late_after) as late
       from specs s
       join usage_events e on e.organization_id = ? and e.customer_id = ? and e.ts >= s.lo and e.ts < s.hi
                          and e.event_name = s.event_name and e.properties @> s.filter
       where (s.key_label is null or coalesce(e.properties->>s.key_label, '') = s.price_key)
         and (s.aggregation = 'count'
              or (s.aggregation = 'unique_count' and e.properties->>s.property is not null)
              or (s.aggregation in ('sum', 'max', 'latest') and case jsonb_typeof(e.properties->s.property)
                    when 'number' then (e.properties->s.property)::numeric >= 0
                    when 'string' then e.properties->>s.property ~ '^[0-9]+([.][0-9]+){0,1}$'
                    else false end))
         and (?::timestamptz is null or e.ts >= ?::timestamptz)
         and (?::timestamptz is null or e.ts < ?::timestamptz)
         and (?::text is null or e.event_id = ?::text)
         and (?::timestamptz is null or (e.ts, e.event_id) > (?::timestamptz, ?::text))
       order by e.ts, e.event_id
       limit ?`,
      [
        JSON.stringify(specs),
        ctx.org,
        ctx.invoice.customer_id,
        from,
        from,
        to,
        to,
        q.event_id ?? null,
        q.event_id ?? null,
        cursor?.t ?? null,
        cursor?.t ?? null,
        cursor?.id ?? null,
        limit + 1,
      ],
    );
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    const data: EventJson[] = page.map((r) => ({
      event_id: r.event_id,
      event_name: r.event_name,
      timestamp: r.ts,
      received_at: r.received_at,
      properties: r.properties ?? {},
      rollup_id: r.rollup_id,
      late: r.late === true,
    }));
    const last = page[page.length - 1];
    return { total, data, next_cursor: more && last ? encodeEventCursor(last.ts, last.event_id) : null };
  }

  // ------------------------------------------------------------------------------------------
  // Plan versions and segments

  private async planVersions(ctx: Context, keys: string[]): Promise<Map<string, { id: string; name: string }>> {
    const out = new Map<string, { id: string; name: string }>();
    if (!keys.length) return out;
    const rows = await ctx.em.execute<{ id: string; key: string; version: number; name: string }[]>(
      `select pv.id, p.key, pv.version, p.name from plan_versions pv join plans p on p.id = pv.plan_id
       where pv.organization_id = ? and p.key in (select jsonb_array_elements_text(?::jsonb))`,
      [ctx.org, JSON.stringify([...new Set(keys)])],
    );
    for (const r of rows) out.set(`${r.key}@${r.version}`, { id: r.id, name: r.name });
    return out;
  }

  private async segments(ctx: Context, source: Record<string, unknown> | null): Promise<SegmentJson[]> {
    const { invoice, line } = ctx;
    const lineStart = Date.parse(line.period_start);
    const lineEnd = Date.parse(line.period_end);
    // Proration lines: the prorated segment itself, with the plan it prices.
    const pr = line.proration as { from?: string; to?: string; days?: number; days_in_period?: number; label?: string } | null;
    if (pr && typeof pr.days === 'number') {
      const ref = await this.planOf(ctx, source, null, []);
      return [
        {
          plan_version_id: ref?.plan_version_id ?? null,
          plan_key: ref?.plan_key ?? String(line.meta?.plan ?? ''),
          version: ref?.version ?? null,
          name: ref?.name ?? null,
          from: pr.from ?? line.period_start,
          to: pr.to ?? line.period_end,
          days: pr.days,
          days_in_period: pr.days_in_period ?? 0,
          fraction: pr.label ?? `${pr.days}/${pr.days_in_period} days`,
          seats: null,
          transition: null,
        },
      ];
    }
    const input = invoice.rating_input;
    const segs = input?.segments ?? [];
    const period = input?.period;
    if (!segs.length || !period || Date.parse(period.start) !== lineStart || Date.parse(period.end) !== lineEnd) return [];
    const D = Math.round((lineEnd - lineStart) / DAY);
    const versions = await this.planVersions(ctx, segs.map((s) => s.plan.plan_key));
    const starts = segs.map((s) => Math.max(lineStart, dayStart(Date.parse(s.from))));
    return segs.map((s, i) => {
      const from = starts[i];
      const to = i + 1 < segs.length ? Math.max(from, starts[i + 1]) : lineEnd;
      const days = Math.round((to - from) / DAY);
      const v = versions.get(`${s.plan.plan_key}@${s.plan.version}`);
      return {
        plan_version_id: v?.id ?? null,
        plan_key: s.plan.plan_key,
        version: s.plan.version ?? null,
        name: v?.name ?? s.plan.name ?? null,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        days,
        days_in_period: D,
        fraction: `${days}/${D} days`,
        seats: s.seats ?? null,
        transition: s.transition ?? null,
      };
    });
  }

  /** The plan version that priced the line. */
  private async planOf(
    ctx: Context,
    source: Record<string, unknown> | null,
    sub: { plan_key: string; version: number; plan_version_id: string; plan_name: string } | null | undefined,
    segments: SegmentJson[],
  ): Promise<PlanRef | null> {
    const { line, invoice } = ctx;
    const candidates: { plan_key: string; version: number | null }[] = [];
    if (USAGE_TYPES.has(line.type)) {
      // Overage is priced by the plan in force at the period end (the last segment having the product).
      const withProduct = [...(invoice.rating_input?.segments ?? [])].reverse().find((s) => s.plan.products?.some((p) => p.product_key === line.product_key));
      if (withProduct) candidates.push({ plan_key: withProduct.plan.plan_key, version: withProduct.plan.version ?? null });
      if (segments.length) candidates.push({ plan_key: segments[segments.length - 1].plan_key, version: segments[segments.length - 1].version });
    }
    const metaPlan = typeof line.meta?.plan === 'string' ? line.meta.plan : null;
    const change = ((source?.subscription_change ?? null) as { data?: Record<string, unknown> } | null)?.data ?? null;
    if (change) {
      const after = { plan_key: String(change.plan_key ?? ''), version: typeof change.plan_version === 'number' ? change.plan_version : null };
      const before = { plan_key: String(change.previous_plan_key ?? ''), version: typeof change.previous_plan_version === 'number' ? change.previous_plan_version : null };
      const ordered = line.type === 'proration_credit' ? [before, after] : [after, before];
      for (const c of ordered) if (c.plan_key && (!metaPlan || c.plan_key === metaPlan)) candidates.push(c);
    }
    const next = invoice.rating_input?.next?.plan;
    if (FEE_TYPES.has(line.type) && next && (!metaPlan || next.plan_key === metaPlan)) candidates.push({ plan_key: next.plan_key, version: next.version ?? null });
    for (const s of [...(invoice.rating_input?.segments ?? [])].reverse()) {
      if (!metaPlan || s.plan.plan_key === metaPlan) candidates.push({ plan_key: s.plan.plan_key, version: s.plan.version ?? null });
    }
    if (sub && (!metaPlan || sub.plan_key === metaPlan)) candidates.push({ plan_key: sub.plan_key, version: sub.version });
    if (!candidates.length && metaPlan) candidates.push({ plan_key: metaPlan, version: null });
    const pick = candidates.find((c) => c.plan_key);
    if (!pick) return null;
    const versions = await this.planVersions(ctx, [pick.plan_key]);
    let version = pick.version;
    if (version === null) {
      // Only the key is known (an opening invoice): the version the subscription pinned when it began.
      const [first] = await ctx.em.execute<{ v: number | null }[]>(
        `select coalesce((select (data->>'previous_plan_version')::int from subscription_changes
                           where organization_id = ? and subscription_id = ? and kind = 'plan' and canceled_at is null and data->>'previous_plan_key' = ?
                           order by effective_at limit 1),
                         (select pv.version from subscriptions s join plan_versions pv on pv.id = s.plan_version_id join plans p on p.id = pv.plan_id
                           where s.id = ? and p.key = ?)) as v`,
        [ctx.org, invoice.subscription_id, pick.plan_key, invoice.subscription_id, pick.plan_key],
      );
      version = first?.v ?? null;
    }
    const v = version !== null ? versions.get(`${pick.plan_key}@${version}`) : undefined;
    return { plan_version_id: v?.id ?? null, plan_key: pick.plan_key, version, name: v?.name ?? null };
  }

  // ------------------------------------------------------------------------------------------
  // Credit notes and the ledger

  private async creditNotes(ctx: Context) {
    const rows = await ctx.em.execute<{ id: string; number: string; reason: string; created_at: string; quantity: string | null; amount: string; description: string }[]>(
      `select n.id, n.number, n.reason, ${iso('n.created_at')} as created_at, cl.quantity::text as quantity, cl.amount::text as amount, cl.description
       from credit_note_lines cl join credit_notes n on n.id = cl.credit_note_id
       where cl.organization_id = ? and cl.invoice_line_id = ? order by n.created_at, n.id`,
      [ctx.org, ctx.line.id],
    );
    return rows.map((r) => ({ ...r, amount: money(r.amount, ctx.currency) }));
  }

  private async ledger(ctx: Context, creditNoteIds: string[]): Promise<ExplanationDocument['ledger']> {
    const { em, org, invoice, line } = ctx;
    const schedules = await em.execute<{ id: string; key: string; currency: string; total_minor: string; service_start: string; service_end: string }[]>(
      `select id, key, currency, total_minor::text as total_minor, service_start::text as service_start, service_end::text as service_end
       from deferral_schedules where organization_id = ? and source_type = 'invoice_line' and source_id = ? order by created_at, id`,
      [org, line.id],
    );
    const usage = USAGE_TYPES.has(line.type);
    const rows = await em.execute<{
      id: string; currency: string; entry_date: string; key: string; source_type: string; source_id: string; description: string;
      reverses_entry_id: string | null; corrects_period: string | null; line_no: number; account_code: string; account_name: string;
      party_id: string | null; debit: string; credit: string; memo: string | null; relation: string;
    }[]>(
      `with related as (
         select e.id, case
                  when e.source_type = 'invoice' then 'invoice'
                  when e.source_type = 'invoice_line' then 'invoice_line'
                  when e.source_type = 'credit_note' then 'credit_note'
                  when e.source_type = 'deferral_schedule' then 'recognition'
                  else 'accrual' end as relation
         from journal_entries e
         where e.organization_id = ?
           and ((e.source_type = 'invoice' and e.source_id = ?)
             or (e.source_type = 'invoice_line' and e.source_id = ?)
             or (e.source_type = 'credit_note' and e.source_id in (select jsonb_array_elements_text(?::jsonb)))
             or (e.source_type = 'deferral_schedule' and e.source_id in (select jsonb_array_elements_text(?::jsonb)))
             or (?::boolean and e.key like 'accrual:%' and (e.source_id = ? or position(? in e.key) > 0)
                 and e.entry_date >= ?::date and e.entry_date <= ?::date))
       )
       select e.id, e.currency, e.entry_date::text as entry_date, e.key, e.source_type, e.source_id, e.description, e.reverses_entry_id, e.corrects_period,
              l.line_no, a.code as account_code, a.name as account_name, l.party_id, l.debit::text as debit, l.credit::text as credit, l.memo, r.relation
       from related r join journal_entries e on e.id = r.id
       join journal_lines l on l.entry_id = e.id
       join ledger_accounts a on a.id = l.account_id
       order by e.entry_date, e.created_at, e.id, l.line_no`,
      [
        org,
        invoice.id,
        line.id,
        JSON.stringify(creditNoteIds),
        JSON.stringify(schedules.map((s) => s.id)),
        usage,
        invoice.subscription_id,
        invoice.subscription_id,
        line.period_start.slice(0, 10),
        line.period_end.slice(0, 10),
      ],
    );
    const byId = new Map<string, LedgerEntryJson>();
    for (const r of rows) {
      const cur = currencyOf(r.currency);
      let e = byId.get(r.id);
      if (!e) {
        e = {
          id: r.id,
          date: r.entry_date,
          key: r.key,
          source: { type: r.source_type, id: r.source_id },
          relation: r.relation,
          description: r.description,
          reverses_entry_id: r.reverses_entry_id,
          corrects_period: r.corrects_period,
          lines: [],
        };
        byId.set(r.id, e);
      }
      e.lines.push({
        line_no: Number(r.line_no),
        account_code: r.account_code,
        account_name: r.account_name,
        party_id: r.party_id,
        debit: Money.fromMinorUnits(r.debit, cur).toJSON(),
        credit: Money.fromMinorUnits(r.credit, cur).toJSON(),
        memo: r.memo,
      });
    }
    return {
      entries: [...byId.values()],
      deferral_schedules: schedules.map((s) => {
        const cur = currencyOf(s.currency);
        return { id: s.id, key: s.key, total: Money.fromMinorUnits(s.total_minor, cur).toJSON(), service_start: s.service_start, service_end: s.service_end };
      }),
    };
  }

  // ------------------------------------------------------------------------------------------
  // Exceptions, disputes, escalation (tables of the close module; absent → empty)

  private async exceptions(
    ctx: Context,
    lateIds: string[],
    originalInvoiceIds: string[],
  ): Promise<{ available: boolean; exceptions: ExceptionJson[]; disputes: ExceptionJson[]; escalation: ExplanationDocument['escalation'] }> {
    const { em, org, invoice, line } = ctx;
    const [reg] = await em.execute<{ exceptions: boolean; queues: boolean }[]>(
      "select to_regclass('exceptions') is not null as exceptions, to_regclass('exception_queues') is not null as queues",
    );
    if (!reg?.exceptions) return { available: false, exceptions: [], disputes: [], escalation: null };
    const rows = await em.execute<{ e: Record<string, unknown>; q: Record<string, unknown> | null }[]>(
      `select to_jsonb(e) as e, ${reg.queues ? 'to_jsonb(q)' : 'null::jsonb'} as q
       from exceptions e
       ${reg.queues ? 'left join exception_queues q on q.id = e.queue_id' : ''}
       where e.organization_id = ?
         and (e.invoice_line_id = ?
              or (e.invoice_id = ? and e.invoice_line_id is null)
              or e.item_key in (select jsonb_array_elements_text(?::jsonb))
              or (e.type = 'late_usage' and e.invoice_id in (select (jsonb_array_elements_text(?::jsonb))::uuid)))
       order by e.created_at, e.id`,
      [org, line.id, invoice.id, JSON.stringify([...lateIds, line.id]), JSON.stringify(lateIds.length ? originalInvoiceIds : [])],
    );
    const queueOf = (q: Record<string, unknown> | null): QueueJson | null =>
      q
        ? {
            id: String(q.id),
            key: String(q.key ?? ''),
            name: (q.name as string) ?? null,
            owner: (q.owner as string) ?? null,
            escalation_contact: (q.escalation_contact as string) ?? null,
            sla_hours: q.sla_hours === null || q.sla_hours === undefined ? null : Number(q.sla_hours),
          }
        : null;
    const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
    const items = rows.map(({ e, q }) => ({
      id: String(e.id),
      type: str(e.type),
      check_key: str(e.check_key),
      item_key: str(e.item_key),
      period: str(e.period),
      status: str(e.status),
      title: str(e.title),
      escalated: typeof e.escalated === 'boolean' ? e.escalated : null,
      assignee: str(e.assignee),
      opened_at: str(e.opened_at),
      sla_due_at: str(e.sla_due_at),
      invoice_id: str(e.invoice_id),
      invoice_line_id: str(e.invoice_line_id),
      queue: queueOf(q),
    }));
    const isDispute = (x: ExceptionJson) => x.type === 'dispute' || x.queue?.key === 'disputes';
    const disputes = items.filter(isDispute);
    const exceptions = items.filter((x) => !isDispute(x));
    const open = (x: ExceptionJson) => !CLOSED_STATUSES.has(String(x.status ?? '').toLowerCase());
    let escalation: ExplanationDocument['escalation'] = null;
    const openDispute = disputes.find((x) => open(x) && x.queue);
    const openException = exceptions.find((x) => open(x) && x.queue);
    if (openDispute?.queue) escalation = { ...openDispute.queue, reason: 'open_dispute' };
    else if (openException?.queue) escalation = { ...openException.queue, reason: 'open_exception' };
    else if (reg.queues) {
      const [q] = await em.execute<{ q: Record<string, unknown> }[]>("select to_jsonb(q) as q from exception_queues q where q.organization_id = ? and q.key = 'disputes' limit 1", [org]);
      const queue = queueOf(q?.q ?? null);
      if (queue) escalation = { ...queue, reason: 'disputes_queue' };
    }
    return { available: true, exceptions, disputes, escalation };
  }
}

interface LateRow {
  id: string;
  status: string;
  invoice_id: string;
  period_start: string;
  period_end: string;
  product_key: string;
  price_key: string;
  rollup_id: string;
  billed_quantity: string;
  previous_quantity: string;
  quantity: string;
  quantity_delta: string;
  amount: string;
  currency: string;
  event_count: string;
  digest: string;
  created_at: string;
  steps: { current?: { line_key: string; amount: string; steps: Step[] }[]; previous?: { line_key: string; amount: string; steps: Step[] }[]; error?: { code: string; message: string } } | null;
  invoice_closed_at: string;
}
