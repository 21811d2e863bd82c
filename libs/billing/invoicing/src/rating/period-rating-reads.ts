import type { EntityManager } from '@mikro-orm/postgresql';
import { dec, formatDecimal } from '@closebook/money';
import type { CatalogService } from '@closebook/catalog';
import { pairKeys } from '@closebook/metering';
import {
  serviceEndBoundary,
  toRatingState,
  type BillingPeriod,
  type StateSegmentAt,
  type Subscription,
  type SubscriptionStateAt,
  type SubscriptionsService,
} from '@closebook/subscriptions';
import type { AllowanceGrant, PeriodInvoiceInput, StateSegment, SubscriptionState, TransitionKind, UsageQuantity } from '@closebook/rating';
import type { RollupSnapshot } from './invoice-writer';

const iso = (d: Date) => d.toISOString();

/** The terms of a period as the rating core takes them: P's segments, whether P+1's fees are billed, P+1's state. */
export interface RatingStates {
  segments: StateSegment[];
  renews: boolean;
  /** Present when `renews`: the state in force at the start of P+1. */
  next?: SubscriptionState;
}

/**
 * The usage part of a billed period invoice's rating input, rebuilt from the database: what
 * `ratePeriodInvoice` needs to rate the invoice's usage lines again.
 */
export interface BilledUsageInput {
  invoice_id: string;
  subscription_id: string;
  billing_period_id: string;
  /**
   * The subscription, its billing period and its segments (plan versions from the catalog, seats,
   * transitions) as the period-end rating builds them, the rollover grants live in the period from
   * the allowance ledger (with what earlier periods drew), and as usage the invoice's billed rollups
   * (`usageOf`). Usage only: `renews: false` and no on-demand charges, adjustments, credits,
   * deferred lines or tax, so it rates exactly the usage lines (which depend on none of those).
   */
  input: PeriodInvoiceInput;
  /** The billed rollups (invoice_rollups' snapshot: one per rollup, by product and price key). */
  rollups: RollupSnapshot[];
}

/** Rollups → the rating core's usage: '' keys are unkeyed; zero quantities add nothing (and a zeroed rollup of a product no plan has any more must not be refused). */
export function usageOf(rollups: { product_key: string; price_key: string; aggregate: string }[]): UsageQuantity[] {
  return rollups
    .filter((r) => dec(r.aggregate).gt(0))
    .map((r) => ({ product_key: r.product_key, price_key: r.price_key === '' ? null : r.price_key, quantity: formatDecimal(dec(r.aggregate)) }));
}

/** A (subscription, period start) key, whatever form the instant comes in. */
export function pairId(subscriptionId: string, periodStart: Date | string): string {
  return `${subscriptionId}|${new Date(periodStart).toISOString()}`;
}

/**
 * The reads a period rating is built from, shared by the period-end rating
 * (`PeriodRatingService.buildMany`) and by whoever must rate a billed period again without writing
 * (reconciliation's rollups → lines check): the states in force as the core's segments, the rollover
 * grants carried into a period, and — `billedUsageInputs` — the whole usage rating input of billed
 * period invoices, a page at a time with one read per kind of input. Nothing here writes.
 */
export class PeriodRatingReads {
  constructor(
    private readonly subscriptions: SubscriptionsService,
    private readonly catalog: CatalogService,
  ) {}

  /**
   * The states of `segmentsAndEnd` for period `p` as the rating core takes them: each segment with
   * its plan version's rating document, seats and add-ons, from its instant, with the direction of
   * the plan change that opened it; whether the subscription renews after P and P+1's state.
   */
  async ratingStates(
    em: EntityManager,
    sub: Pick<Subscription, 'endsAt'>,
    p: Pick<BillingPeriod, 'periodEnd'>,
    state: { segments: StateSegmentAt[]; end: SubscriptionStateAt },
  ): Promise<RatingStates> {
    const segments: StateSegment[] = [];
    for (const seg of state.segments) {
      const planChange = seg.changes.find((c) => c.kind === 'plan');
      segments.push({
        ...toRatingState(await this.catalog.ratingPlanVersion(em, seg.state.planVersionId), seg.state.seats, seg.state.addons),
        from: iso(seg.from),
        ...(planChange && segments.length ? { transition: planChange.data.direction as TransitionKind } : {}),
      });
    }
    const renews = !(sub.endsAt && serviceEndBoundary(sub.endsAt) <= p.periodEnd);
    let next: SubscriptionState | undefined;
    if (renews) next = toRatingState(await this.catalog.ratingPlanVersion(em, state.end.planVersionId), state.end.seats, state.end.addons);
    return { segments, renews, ...(next ? { next } : {}) };
  }

  /**
   * Rollover grants live in the period starting at each pair's `period_start`, with `drawn_before` =
   * what the ledger recorded drawn from them in earlier periods; one read for all pairs, by `pairId`.
   */
  async carriedGrantsMany(em: EntityManager, pairs: readonly { subscription_id: string; period_start: Date }[]): Promise<Map<string, AllowanceGrant[]>> {
    const rows = await em.execute<{ subscription_id: string; period_start: Date; grant: AllowanceGrant; drawn_before: string }[]>(
      `select p.subscription_id, p.period_start, g."grant",
              (select coalesce(sum(d.drawn), 0) from allowance_drawdowns d
                where d.subscription_id = g.subscription_id and d.grant_id = g.grant_id and d.period_start < p.period_start)::text as drawn_before
       from unnest(?::uuid[], ?::timestamptz[]) as p(subscription_id, period_start)
       -- Per pair through the (subscription_id, grant_id) index, fenced: the table grows during a period
       -- end (every invoice writes grants), faster than the planner's statistics follow.
       cross join lateral (select * from allowance_grants g where g.subscription_id = p.subscription_id and g.kind = 'rollover'
                             and g.granted_in_period <= p.period_start and g.expires_after_period >= p.period_start offset 0) g
       order by p.subscription_id, p.period_start, g.grant_id`,
      pairKeys(pairs),
    );
    const out = new Map<string, AllowanceGrant[]>();
    for (const r of rows) {
      const key = pairId(r.subscription_id, r.period_start);
      out.set(key, [...(out.get(key) ?? []), { ...r.grant, drawn_before: formatDecimal(dec(r.drawn_before)) }]);
    }
    return out;
  }

  /**
   * The usage rating inputs of billed period invoices (see `BilledUsageInput`), by invoice id, read
   * with a constant number of statements whatever their number (a page of a reconciliation scan):
   * the invoices with their billing periods and subscriptions, the subscriptions' states
   * (`segmentsAndEndMany`), the carried grants and the billed rollups. Read-only: it runs on a fork
   * that shares the caller's transaction, so the entities it loads never reach the caller's unit of
   * work. Invoices that are not period invoices, or whose billing period or subscription is gone, are
   * absent from the answer.
   */
  async billedUsageInputs(em: EntityManager, invoiceIds: readonly string[]): Promise<Map<string, BilledUsageInput>> {
    const out = new Map<string, BilledUsageInput>();
    if (!invoiceIds.length) return out;
    const fork = em.fork({ clear: true, keepTransactionContext: true });
    // The columns of the subscription and billing period a period rating reads (`buildMany`: the
    // subscription's start, anchor and end, the period's bounds), as plain rows.
    const rows = await fork.execute<
      { id: string; subscription_id: string; billing_period_id: string; period_start: Date | string; period_end: Date | string; started_at: Date | string; ends_at: Date | string | null; billing_anchor: number }[]
    >(
      `select i.id, i.subscription_id, i.billing_period_id, bp.period_start, bp.period_end, s.started_at, s.ends_at, s.billing_anchor
       from invoices i
       join billing_periods bp on bp.id = i.billing_period_id and bp.subscription_id = i.subscription_id
       join subscriptions s on s.id = i.subscription_id
       where i.id = any(?::uuid[]) and i.kind = 'period' order by i.id`,
      [`{${[...new Set(invoiceIds)].join(',')}}`],
    );
    if (!rows.length) return out;
    const items = rows.map((r) => ({
      inv: r,
      sub: { id: r.subscription_id, startedAt: new Date(r.started_at), endsAt: r.ends_at === null ? null : new Date(r.ends_at), billingAnchor: Number(r.billing_anchor) },
      p: { id: r.billing_period_id, periodStart: new Date(r.period_start), periodEnd: new Date(r.period_end) },
    }));
    const states = await this.subscriptions.segmentsAndEndMany(fork, items.map(({ sub, p }) => ({ subscriptionId: sub.id, from: p.periodStart, to: p.periodEnd })));
    const grants = await this.carriedGrantsMany(fork, items.map(({ sub, p }) => ({ subscription_id: sub.id, period_start: p.periodStart })));
    const snapshots = await this.billedRollupsMany(fork, items.map(({ inv }) => inv.id));
    for (const [i, { inv, sub, p }] of items.entries()) {
      const { segments } = await this.ratingStates(fork, sub, p, states[i]);
      const rollups = snapshots.get(inv.id) ?? [];
      out.set(inv.id, {
        invoice_id: inv.id,
        subscription_id: sub.id,
        billing_period_id: p.id,
        input: {
          subscription_id: sub.id,
          subscription_start: iso(sub.startedAt),
          anchor_day: sub.billingAnchor,
          period: { start: iso(p.periodStart), end: iso(p.periodEnd) },
          segments,
          renews: false,
          grants: grants.get(pairId(sub.id, p.periodStart)) ?? [],
          usage: usageOf(rollups),
        },
        rollups,
      });
    }
    return out;
  }

  /**
   * The rollups invoices were rated from (invoice_rollups: the snapshot taken at rating), one per
   * rollup, in (product, price key) order as the rating read them; by invoice id.
   */
  async billedRollupsMany(em: EntityManager, invoiceIds: readonly string[]): Promise<Map<string, RollupSnapshot[]>> {
    const out = new Map<string, RollupSnapshot[]>();
    if (!invoiceIds.length) return out;
    const rows = await em.execute<(RollupSnapshot & { invoice_id: string })[]>(
      `select distinct on (p.id, r.rollup_id) p.id as invoice_id, r.rollup_id as id, r.product_key, r.price_key,
              r.event_count::text as event_count, r.aggregate::text as aggregate, r.digest::text as digest
       from unnest(?::uuid[]) as p(id)
       -- Per invoice through the invoice_id index (fenced, as the rating's own reads are).
       cross join lateral (select * from invoice_rollups r where r.invoice_id = p.id offset 0) r
       order by p.id, r.rollup_id, r.invoice_line_id nulls first, r.id`,
      [`{${invoiceIds.join(',')}}`],
    );
    for (const r of rows) {
      const list = out.get(r.invoice_id) ?? [];
      list.push({ id: r.id, product_key: r.product_key, price_key: r.price_key, event_count: r.event_count, aggregate: r.aggregate, digest: r.digest });
      out.set(r.invoice_id, list);
    }
    const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
    for (const list of out.values()) list.sort((a, b) => cmp(a.product_key, b.product_key) || cmp(a.price_key, b.price_key) || cmp(a.id, b.id));
    return out;
  }
}
