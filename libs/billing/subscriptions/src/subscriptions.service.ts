import { Injectable, Logger } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  afterCursor,
  AuditService,
  ConflictError,
  decodeCursor,
  NotFoundError,
  UnprocessableError,
  ValidationError,
} from '@closebook/platform';
import { CatalogService, Product, type Plan, type PlanVersion } from '@closebook/catalog';
import { dec } from '@closebook/money';
import {
  classifyTransition,
  isConversion,
  periodContaining,
  PRORATION_STRATEGIES,
  type ProrationStrategy,
  type RatingPlanVersion,
  type SubscriptionState,
  type TransitionKind,
} from '@closebook/rating';
import { Customer } from './entities/customer.entity';
import { Subscription } from './entities/subscription.entity';
import { SubscriptionAddon } from './entities/subscription-addon.entity';
import { SubscriptionChange, type SubscriptionChangeKind } from './entities/subscription-change.entity';
import { BillingPeriod } from './entities/billing-period.entity';
import { CustomersService } from './customers.service';
import { BillingPeriodsService, periodHorizon, serviceEndBoundary } from './billing-periods.service';
import { OnDemandCharge } from './entities/on-demand-charge.entity';
import { SubscriptionHooks } from './subscription-hooks';

export interface CreateSubscriptionInput {
  plan_key: string;
  /** Default: the latest published version. */
  plan_version?: number;
  seats?: number;
  addons?: { product_key: string; quantity?: number }[];
  billing_anchor?: number;
  /** ISO 8601; default now. */
  started_at?: string;
}

export interface SeatsChangeInput {
  seats: number;
  /** ISO 8601; default now. */
  effective_at?: string;
}

export interface AddonChangeInput {
  product_key: string;
  /** 0 removes the add-on. */
  quantity: number;
  effective_at?: string;
}

export type PlanChangeTiming = 'immediate' | 'period_end';

export interface PlanChangeInput {
  plan_key: string;
  /** Default: the latest published version. */
  plan_version?: number;
  /** Default: upgrades (and lateral moves) immediate, downgrades at the end of the current period. */
  timing?: PlanChangeTiming;
  /** Immediate changes only: now (default) or earlier in the current period. */
  effective_at?: string;
  /** Overrides the plan's and the organization's proration strategy for this change. */
  proration_strategy?: ProrationStrategy;
}

export interface CancelInput {
  /** `period_end`: service ends when the current period does; `immediately`: now, unused fees credited. */
  at: 'period_end' | 'immediately';
}

export interface ChargeInput {
  description: string;
  /** Decimal string > 0 (at most 12 decimals). */
  quantity: string;
  /** Decimal string >= 0 in the subscription's currency (at most 12 decimals). */
  unit_amount: string;
  /** ISO 8601; default now. */
  date?: string;
  /** A `one_time` product of the catalog. */
  product_key?: string;
}

/** A state of the subscription as the rating core takes it, with the ids it came from. */
export interface RatedState {
  planVersionId: string;
  plan: RatingPlanVersion;
  seats: number;
  addons: { productKey: string; productId: string; quantity: number }[];
}

/** What a plan change would do, decided without writing (the preview and the change share it). */
export interface PlanChangeDecision {
  subscription: Subscription;
  target: { plan: Plan; version: PlanVersion };
  /** The terms in force at `effectiveAt` before the change, and after it. */
  from: RatedState;
  to: RatedState;
  /** Add-ons the new version does not offer: they end with the change. */
  droppedAddons: string[];
  direction: TransitionKind;
  timing: PlanChangeTiming;
  effectiveAt: Date;
  requestedStrategy: ProrationStrategy | null;
  /** Leaving a zero-fee plan for a paid one (SPEC §2). */
  conversion: boolean;
}

/** A state in force from `from` (a period start or a change's effective instant) with the changes that made it. */
export interface StateSegmentAt {
  from: Date;
  state: SubscriptionStateAt;
  /** The changes effective exactly at `from` (empty for the first segment unless one is). */
  changes: SubscriptionChange[];
}

/** The rating core's view of a state (`SubscriptionState`) for a plan document. */
export function toRatingState(plan: RatingPlanVersion, seats: number, addons: { productKey: string; quantity: number }[]): SubscriptionState {
  return { plan, seats, addons: addons.map((a) => ({ product_key: a.productKey, quantity: a.quantity })) };
}

/** A subscription's terms in force at one instant. */
export interface SubscriptionStateAt {
  at: Date;
  planVersionId: string;
  seats: number;
  addons: { productKey: string; productId: string; quantity: number }[];
}

export interface SubscriptionDetail {
  subscription: Subscription;
  customer: Customer;
  plan: Plan;
  version: PlanVersion;
  /** Every add-on range: history, current and scheduled. */
  addons: SubscriptionAddon[];
  /** Every recorded change, by effective time. */
  changes: SubscriptionChange[];
  periods: BillingPeriod[];
  /** The state in force at `asOf`. */
  state: SubscriptionStateAt;
  asOf: Date;
}

export interface RecordedChange {
  change: SubscriptionChange;
  detail: SubscriptionDetail;
}

const MIN_INSTANT = Date.UTC(1970, 0, 1);
const MAX_INSTANT = Date.UTC(9999, 0, 1);

function violatedConstraint(err: unknown): string | undefined {
  const e = err as { constraint?: unknown } | null;
  return e && typeof e === 'object' && typeof e.constraint === 'string' ? e.constraint : undefined;
}

function parseInstant(value: string | undefined, fallback: Date, field: string): Date {
  if (value === undefined) return fallback;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms) || ms < MIN_INSTANT || ms >= MAX_INSTANT) {
    throw new ValidationError('invalid_instant', `${field} must be an ISO 8601 instant between 1970 and 9999`, field);
  }
  return new Date(ms);
}

@Injectable()
export class SubscriptionsService {
  private readonly logger = new Logger('SubscriptionsService');

  constructor(
    private readonly audit: AuditService,
    private readonly customers: CustomersService,
    private readonly catalog: CatalogService,
    private readonly periods: BillingPeriodsService,
    private readonly hooks: SubscriptionHooks,
  ) {}

  /**
   * Subscribes a customer to a published plan version, with its add-ons and its billing periods
   * through the one after the period containing now, in one transaction. A customer has at most
   * one subscription in force at any instant (409 `subscription_overlap`).
   */
  async create(em: EntityManager, organizationId: string, customerRef: string, input: CreateSubscriptionInput, now = new Date()): Promise<SubscriptionDetail> {
    return em.transactional(async (tx) => {
      // Locking the customer serializes its subscription writes; the exclusion constraint is the last word.
      const customer = await this.customers.get(tx, organizationId, customerRef, { lock: true });
      const { plan, version } = await this.catalog.publishedVersion(tx, organizationId, input.plan_key, input.plan_version);
      if (plan.currency !== customer.currency) {
        throw new UnprocessableError(
          'currency_mismatch',
          `plan ${plan.key} bills in ${plan.currency} but customer ${customer.externalId} is billed in ${customer.currency}`,
          'plan_key',
        );
      }
      const startedAt = parseInstant(input.started_at, now, 'started_at');
      const addons = await this.resolveAddons(tx, version, input.addons ?? []);

      const [clash] = await tx.execute<{ id: string }[]>(
        'select id from subscriptions where customer_id = ? and tstzrange(started_at, ends_at) && tstzrange(?::timestamptz, null) limit 1',
        [customer.id, startedAt.toISOString()],
      );
      if (clash) throw overlap(customer, clash.id);

      const sub = tx.create(Subscription, {
        organizationId,
        customerId: customer.id,
        planVersionId: version.id,
        status: 'active',
        startedAt,
        endsAt: null,
        billingAnchor: input.billing_anchor ?? 1,
        seats: input.seats ?? 1,
      });
      for (const a of addons) {
        tx.create(SubscriptionAddon, {
          organizationId,
          subscriptionId: sub.id,
          productId: a.productId,
          productKey: a.productKey,
          quantity: a.quantity,
          effectiveFrom: startedAt,
          effectiveTo: null,
        });
      }
      this.audit.record(tx, {
        organizationId,
        action: 'subscription.created',
        resourceType: 'subscription',
        resourceId: sub.id,
        data: {
          customer_id: customer.id,
          plan_key: plan.key,
          plan_version: version.version,
          seats: sub.seats,
          billing_anchor: sub.billingAnchor,
          started_at: startedAt.toISOString(),
          addons: addons.map((a) => ({ product_key: a.productKey, quantity: a.quantity })),
        },
      });
      try {
        await tx.flush();
      } catch (e) {
        if (violatedConstraint(e) === 'subscriptions_no_overlap') throw overlap(customer);
        throw e;
      }
      await this.periods.ensureFor(tx, sub, periodHorizon(sub, now));
      await this.hooks.subscriptionCreated(tx, sub, now);
      await tx.flush();
      return this.detailOf(tx, sub, now);
    });
  }

  async get(em: EntityManager, organizationId: string, id: string, now = new Date()): Promise<SubscriptionDetail> {
    return this.detailOf(em, await this.find(em, organizationId, id), now);
  }

  /** A customer's subscriptions, newest first; fetch `limit + 1` rows for `toPage`. */
  async listForCustomer(
    em: EntityManager,
    organizationId: string,
    customerRef: string,
    q: { limit: number; cursor?: string },
  ): Promise<{ customer: Customer; subscriptions: Subscription[]; versions: Map<string, { plan: Plan; version: PlanVersion }> }> {
    const customer = await this.customers.get(em, organizationId, customerRef);
    const subscriptions = await em.find(
      Subscription,
      { organizationId, customerId: customer.id, ...afterCursor(decodeCursor(q.cursor)) },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 },
    );
    const versions = await this.catalog.pinnedVersions(em, organizationId, subscriptions.map((s) => s.planVersionId));
    return { customer, subscriptions, versions };
  }

  /**
   * Records a seat change effective at `effective_at` (default now). Effective now or in the past
   * (within the current period), it updates the subscription's seats at once; in the future, the
   * scheduler applies it when it falls due.
   */
  async changeSeats(em: EntityManager, organizationId: string, id: string, input: SeatsChangeInput, now = new Date()): Promise<RecordedChange> {
    return em.transactional(async (tx) => {
      const sub = await this.find(tx, organizationId, id, true);
      const t = parseInstant(input.effective_at, now, 'effective_at');
      await this.checkEffective(tx, sub, t, now, 'seats');
      const previous = await this.seatsAt(tx, sub, t);
      const applied = t.getTime() <= now.getTime();
      const change = tx.create(SubscriptionChange, {
        organizationId,
        subscriptionId: sub.id,
        kind: 'seats',
        effectiveAt: t,
        data: { seats: input.seats, previous_seats: previous },
        appliedAt: applied ? now : null,
      });
      if (applied) sub.seats = input.seats;
      this.audit.record(tx, {
        organizationId,
        action: 'subscription.seats_changed',
        resourceType: 'subscription',
        resourceId: sub.id,
        data: { change_id: change.id, seats: input.seats, previous_seats: previous, effective_at: t.toISOString(), applied },
      });
      await tx.flush();
      if (applied) await this.applied(tx, change, sub, now);
      return { change, detail: await this.detailOf(tx, sub, now) };
    });
  }

  /**
   * Sets an add-on's quantity from `effective_at` (default now; 0 removes it): the open range
   * closes at that instant and a new one opens, so future changes are scheduled in the ranges.
   */
  async changeAddon(em: EntityManager, organizationId: string, id: string, input: AddonChangeInput, now = new Date()): Promise<RecordedChange> {
    return em.transactional(async (tx) => {
      const sub = await this.find(tx, organizationId, id, true);
      const t = parseInstant(input.effective_at, now, 'effective_at');
      const version = await this.catalog.planVersionById(tx, sub.planVersionId, organizationId);
      const [addon] = await this.resolveAddons(tx, version, [{ product_key: input.product_key, quantity: Math.max(1, input.quantity) }], 'product_key');
      await this.checkEffective(tx, sub, t, now, 'addon', addon.productId);

      const rows = await tx.find(SubscriptionAddon, { subscriptionId: sub.id, productId: addon.productId }, { orderBy: { effectiveFrom: 'asc' } });
      const inForce = rows.find((r) => r.effectiveFrom <= t && (!r.effectiveTo || r.effectiveTo > t));
      const previous = inForce?.quantity ?? 0;
      const open = rows.find((r) => !r.effectiveTo);
      let insert = input.quantity > 0;
      if (open && open.effectiveFrom.getTime() === t.getTime()) {
        if (input.quantity > 0) open.quantity = input.quantity;
        else tx.remove(open);
        insert = false;
      } else if (open) {
        open.effectiveTo = t;
      }
      // The closed range is written before the new one opens (the exclusion constraint is immediate).
      await tx.flush();
      if (insert) {
        tx.create(SubscriptionAddon, {
          organizationId,
          subscriptionId: sub.id,
          productId: addon.productId,
          productKey: addon.productKey,
          quantity: input.quantity,
          effectiveFrom: t,
          effectiveTo: null,
        });
      }
      const applied = t.getTime() <= now.getTime();
      const change = tx.create(SubscriptionChange, {
        organizationId,
        subscriptionId: sub.id,
        kind: 'addon',
        effectiveAt: t,
        data: { product_key: addon.productKey, product_id: addon.productId, quantity: input.quantity, previous_quantity: previous },
        appliedAt: applied ? now : null,
      });
      this.audit.record(tx, {
        organizationId,
        action: 'subscription.addon_changed',
        resourceType: 'subscription',
        resourceId: sub.id,
        data: { change_id: change.id, product_key: addon.productKey, quantity: input.quantity, previous_quantity: previous, effective_at: t.toISOString(), applied },
      });
      await tx.flush();
      if (applied) await this.applied(tx, change, sub, now);
      return { change, detail: await this.detailOf(tx, sub, now) };
    });
  }

  /** The subscription's terms in force at `t`: pinned version, seats and add-on quantities. */
  async stateAt(em: EntityManager, subscriptionId: string, t: Date, organizationId?: string): Promise<SubscriptionStateAt> {
    const sub = await em.findOne(Subscription, { id: subscriptionId, ...(organizationId ? { organizationId } : {}) });
    if (!sub) throw new NotFoundError('subscription', subscriptionId);
    return this.stateOf(em, sub, t);
  }

  /** The subscription of a customer in force at `t` (started_at <= t < ends_at), if any. */
  async inForceAt(em: EntityManager, organizationId: string, customerId: string, t: Date): Promise<Subscription | null> {
    return em.findOne(Subscription, {
      organizationId,
      customerId,
      startedAt: { $lte: t },
      $or: [{ endsAt: null }, { endsAt: { $gt: t } }],
    });
  }

  /**
   * Applies recorded changes that have fallen due (scheduled for the future when recorded): seats
   * take the latest due seat change, a plan change re-pins the version, a cancellation ends the
   * subscription; each change's money effect (the lifecycle hooks) commits with it. One transaction
   * per change, so a change whose effect cannot be computed is reported and never blocks the others.
   * `opts.subscriptionId` limits it to one subscription. Returns the changes applied.
   */
  async applyDueChanges(em: EntityManager, now = new Date(), batch = 500, opts: { subscriptionId?: string } = {}): Promise<number> {
    const due = await em.fork().find(
      SubscriptionChange,
      { appliedAt: null, canceledAt: null, effectiveAt: { $lte: now }, ...(opts.subscriptionId ? { subscriptionId: opts.subscriptionId } : {}) },
      { orderBy: { effectiveAt: 'asc', createdAt: 'asc', id: 'asc' }, limit: batch, fields: ['id'] },
    );
    let applied = 0;
    for (const { id } of due) {
      try {
        const done = await em.fork().transactional(async (tx) => {
          const change = await tx.findOne(SubscriptionChange, { id, appliedAt: null, canceledAt: null });
          if (!change) return false;
          const sub = await tx.findOneOrFail(Subscription, { id: change.subscriptionId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
          await tx.refresh(change);
          if (change.appliedAt || change.canceledAt) return false;
          if (change.kind === 'seats') sub.seats = Number(change.data.seats);
          if (change.kind === 'plan') sub.planVersionId = String(change.data.plan_version_id);
          if (change.kind === 'cancel') sub.status = 'canceled';
          change.appliedAt = now;
          this.audit.record(tx, {
            organizationId: change.organizationId,
            action: 'subscription.change_applied',
            resourceType: 'subscription',
            resourceId: change.subscriptionId,
            data: { change_id: change.id, kind: change.kind, effective_at: change.effectiveAt.toISOString(), ...change.data },
          });
          await tx.flush();
          await this.applied(tx, change, sub, now);
          return true;
        });
        if (done) applied++;
      } catch (err) {
        this.logger.error({ err, change: id }, 'a due subscription change could not be applied; it is retried on the next run');
      }
    }
    return applied;
  }

  /** The subscription row (404 for another organization's or an unknown id). */
  async byId(em: EntityManager, organizationId: string, id: string): Promise<Subscription> {
    return this.find(em, organizationId, id);
  }

  /** The subscription row, locked for a change (404 for another organization's). */
  async lockForChange(em: EntityManager, organizationId: string, id: string): Promise<Subscription> {
    return this.find(em, organizationId, id, true);
  }

  /**
   * The states in force over [from, to): the one at `from`, then one at each instant inside the
   * range at which a (non-canceled) change takes effect. What period rating turns into segments.
   */
  async segments(em: EntityManager, subscriptionId: string, from: Date, to: Date): Promise<StateSegmentAt[]> {
    return (await this.segmentsAndEnd(em, subscriptionId, from, to)).segments;
  }

  /** `segments` and the state at `to` (what the next period starts with), from one read of the changes. */
  async segmentsAndEnd(em: EntityManager, subscriptionId: string, from: Date, to: Date): Promise<{ segments: StateSegmentAt[]; end: SubscriptionStateAt }> {
    const [one] = await this.segmentsAndEndMany(em, [{ subscriptionId, from, to }]);
    return one;
  }

  /**
   * `segmentsAndEnd` of many ranges (a page of period ratings) in three reads whatever their number:
   * the subscriptions, their add-ons and their changes. Answers in the order asked.
   */
  async segmentsAndEndMany(
    em: EntityManager,
    ranges: readonly { subscriptionId: string; from: Date; to: Date }[],
  ): Promise<{ segments: StateSegmentAt[]; end: SubscriptionStateAt }[]> {
    const ids = [...new Set(ranges.map((r) => r.subscriptionId))];
    // One after another: a caller's transaction has one connection, which runs one query at a time.
    const subs = await em.find(Subscription, { id: { $in: ids } });
    const addons = await em.find(SubscriptionAddon, { subscriptionId: { $in: ids } });
    const changes = await em.find(SubscriptionChange, { subscriptionId: { $in: ids }, canceledAt: null }, { orderBy: { effectiveAt: 'asc', createdAt: 'asc', id: 'asc' } });
    const byId = new Map(subs.map((s) => [s.id, s]));
    const grouped = <T extends { subscriptionId: string }>(rows: T[]) => {
      const m = new Map<string, T[]>();
      for (const row of rows) {
        const list = m.get(row.subscriptionId);
        if (list) list.push(row);
        else m.set(row.subscriptionId, [row]);
      }
      return m;
    };
    const addonsOf = grouped(addons);
    const changesOf = grouped(changes);
    const out: { segments: StateSegmentAt[]; end: SubscriptionStateAt }[] = [];
    for (const r of ranges) {
      const sub = byId.get(r.subscriptionId);
      if (!sub) throw new NotFoundError('subscription', r.subscriptionId);
      const a = addonsOf.get(sub.id) ?? [];
      const c = changesOf.get(sub.id) ?? [];
      out.push({ segments: await this.segmentsOf(em, sub, r.from, r.to, a, c), end: await this.stateOf(em, sub, r.to, a, c) });
    }
    return out;
  }

  private async segmentsOf(em: EntityManager, sub: Subscription, from: Date, to: Date, addons: SubscriptionAddon[], changes: SubscriptionChange[]): Promise<StateSegmentAt[]> {
    const out: StateSegmentAt[] = [
      { from, state: await this.stateOf(em, sub, from, addons, changes), changes: changes.filter((c) => c.effectiveAt.getTime() === from.getTime()) },
    ];
    const instants = [...new Set(changes.map((c) => c.effectiveAt.getTime()))].filter((t) => t > from.getTime() && t < to.getTime()).sort((a, b) => a - b);
    for (const t of instants) {
      const at = new Date(t);
      out.push({ from: at, state: await this.stateOf(em, sub, at, addons, changes), changes: changes.filter((c) => c.effectiveAt.getTime() === t) });
    }
    return out;
  }

  /** A state with its plan document, as the rating core takes it. */
  async ratedState(em: EntityManager, state: SubscriptionStateAt, organizationId?: string): Promise<RatedState> {
    return { planVersionId: state.planVersionId, plan: await this.catalog.ratingPlanVersion(em, state.planVersionId, organizationId), seats: state.seats, addons: state.addons };
  }

  /**
   * Decides a plan change without writing: the target version, the terms before and after, the
   * direction (`classifyTransition`), the timing (upgrades and lateral moves immediate, downgrades at
   * the end of the current period, unless asked otherwise) and the instant it takes effect.
   */
  async planChangeDecision(em: EntityManager, organizationId: string, id: string, input: PlanChangeInput, now = new Date()): Promise<PlanChangeDecision> {
    const sub = await this.find(em, organizationId, id);
    this.assertChangeable(sub, now);
    const target = await this.catalog.publishedVersion(em, organizationId, input.plan_key, input.plan_version);
    const customer = await em.findOneOrFail(Customer, { id: sub.customerId });
    if (target.plan.currency !== customer.currency) {
      throw new UnprocessableError(
        'currency_mismatch',
        `plan ${target.plan.key} bills in ${target.plan.currency} but the subscription bills in ${customer.currency}`,
        'plan_key',
      );
    }
    if (input.proration_strategy !== undefined && !PRORATION_STRATEGIES.includes(input.proration_strategy)) {
      throw new ValidationError('invalid_value', `proration_strategy must be one of ${PRORATION_STRATEGIES.join(', ')}`, 'proration_strategy');
    }
    if (input.timing === 'period_end' && input.effective_at !== undefined) {
      throw new ValidationError('effective_at_with_period_end', 'effective_at is only for immediate changes; a period_end change takes effect when the current period ends', 'effective_at');
    }
    // The terms now decide the default timing; the terms at the effective instant are what changes.
    const nowRef = sub.startedAt > now ? sub.startedAt : now;
    const current = await this.ratedState(em, await this.stateOf(em, sub, nowRef), organizationId);
    const toDoc = target.version.document;
    const offered = new Set((await this.catalog.versionProducts(em, target.version.id)).filter((p) => p.kind === 'addon').map((p) => p.productKey));
    const classify = (from: RatedState) => {
      const kept = from.addons.filter((a) => offered.has(a.productKey));
      return {
        kept,
        direction: classifyTransition(toRatingState(from.plan, from.seats, from.addons), toRatingState(toDoc, from.seats, kept)),
      };
    };
    const timing: PlanChangeTiming = input.timing ?? (input.effective_at !== undefined ? 'immediate' : classify(current).direction === 'downgrade' ? 'period_end' : 'immediate');
    let effectiveAt: Date;
    if (timing === 'immediate') {
      effectiveAt = parseInstant(input.effective_at, now, 'effective_at');
      if (effectiveAt > now) {
        throw new UnprocessableError(
          'effective_in_future',
          'an immediate plan change takes effect now or earlier in the current period; use timing period_end to schedule one',
          'effective_at',
        );
      }
    } else {
      effectiveAt = await this.currentPeriodEnd(em, sub, now);
    }
    await this.checkEffective(em, sub, effectiveAt, now, 'plan');
    const from = timing === 'immediate' && effectiveAt.getTime() === nowRef.getTime() ? current : await this.ratedState(em, await this.stateOf(em, sub, effectiveAt), organizationId);
    if (from.planVersionId === target.version.id) {
      throw new UnprocessableError('same_plan_version', `the subscription is already on ${target.plan.key} v${target.version.version} at that time`, 'plan_key');
    }
    const { kept, direction } = classify(from);
    // A dropped add-on must not have changes recorded after the plan change (history stays linear).
    const dropped = from.addons.filter((a) => !offered.has(a.productKey));
    for (const a of dropped) {
      const later = await em.findOne(SubscriptionChange, { subscriptionId: sub.id, kind: 'addon', canceledAt: null, effectiveAt: { $gt: effectiveAt }, data: { product_id: a.productId } });
      if (later) {
        throw new UnprocessableError(
          'change_out_of_order',
          `${a.productKey} (not offered by ${target.plan.key} v${target.version.version}) has a change effective ${later.effectiveAt.toISOString()}; cancel it first`,
          'plan_key',
          { change_id: later.id },
        );
      }
    }
    const to: RatedState = { planVersionId: target.version.id, plan: toDoc, seats: from.seats, addons: kept };
    return {
      subscription: sub,
      target,
      from,
      to,
      droppedAddons: dropped.map((a) => a.productKey),
      direction,
      timing,
      effectiveAt,
      requestedStrategy: input.proration_strategy ?? null,
      conversion: isConversion(toRatingState(from.plan, from.seats, from.addons), toRatingState(to.plan, to.seats, to.addons)),
    };
  }

  /**
   * Records a plan change (SPEC §2 transition): a `plan` change row carrying the decision, the
   * add-ons the new version does not offer closed at the effective instant, and — effective now or
   * earlier — the new version pinned at once with its money effect (hooks); a period_end change is
   * scheduled (listed in `scheduled_changes`, cancellable) and applied by `applyDueChanges`.
   */
  async changePlan(em: EntityManager, organizationId: string, id: string, input: PlanChangeInput, now = new Date()): Promise<RecordedChange> {
    return em.transactional(async (tx) => {
      const sub = await this.find(tx, organizationId, id, true);
      const d = await this.planChangeDecision(tx, organizationId, sub.id, input, now);
      const t = d.effectiveAt;
      const closed: { range_id: string; product_key: string }[] = [];
      if (d.droppedAddons.length) {
        const ranges = await tx.find(SubscriptionAddon, { subscriptionId: sub.id, productKey: { $in: d.droppedAddons } });
        for (const r of ranges) {
          if (r.effectiveFrom < t && (!r.effectiveTo || r.effectiveTo > t)) {
            r.effectiveTo = t;
            closed.push({ range_id: r.id, product_key: r.productKey });
          }
        }
      }
      const applied = t.getTime() <= now.getTime();
      const fromVersion = (await this.catalog.pinnedVersions(tx, organizationId, [d.from.planVersionId])).get(d.from.planVersionId);
      const change = tx.create(SubscriptionChange, {
        organizationId,
        subscriptionId: sub.id,
        kind: 'plan',
        effectiveAt: t,
        data: {
          plan_version_id: d.to.planVersionId,
          plan_key: d.target.plan.key,
          plan_version: d.target.version.version,
          previous_plan_version_id: d.from.planVersionId,
          previous_plan_key: fromVersion?.plan.key ?? d.from.plan.plan_key,
          previous_plan_version: fromVersion?.version.version ?? d.from.plan.version,
          direction: d.direction,
          timing: d.timing,
          proration_strategy: d.requestedStrategy,
          conversion: d.conversion,
          dropped_addons: closed,
        },
        appliedAt: applied ? now : null,
      });
      if (applied) sub.planVersionId = d.to.planVersionId;
      this.audit.record(tx, {
        organizationId,
        action: applied ? 'subscription.plan_changed' : 'subscription.plan_change_scheduled',
        resourceType: 'subscription',
        resourceId: sub.id,
        data: { change_id: change.id, ...change.data, effective_at: t.toISOString(), applied },
      });
      await tx.flush();
      if (applied) await this.applied(tx, change, sub, now);
      return { change, detail: await this.detailOf(tx, sub, now) };
    });
  }

  /**
   * Cancels the subscription: at the end of the current period (scheduled, cancellable) or
   * immediately (service ends now; the unused part of the flat fees is credited by the hooks).
   * Billing periods after the end are removed and the last one ends at the service end boundary.
   * Scheduled changes at or after the end are canceled.
   */
  async cancel(em: EntityManager, organizationId: string, id: string, input: CancelInput, now = new Date()): Promise<RecordedChange> {
    return em.transactional(async (tx) => {
      const sub = await this.find(tx, organizationId, id, true);
      if (sub.status !== 'active') throw new UnprocessableError('subscription_canceled', `subscription ${sub.id} is canceled`, 'subscription');
      if (sub.endsAt) {
        throw new UnprocessableError('cancellation_scheduled', `subscription ${sub.id} already ends at ${sub.endsAt.toISOString()}`, 'at');
      }
      let t: Date;
      if (input.at === 'immediately') {
        if (sub.startedAt >= now) {
          throw new UnprocessableError('subscription_not_started', `subscription ${sub.id} starts at ${sub.startedAt.toISOString()}; cancel it at period_end`, 'at');
        }
        t = now;
      } else {
        t = await this.currentPeriodEnd(tx, sub, now);
      }
      const pending = await tx.find(SubscriptionChange, { subscriptionId: sub.id, appliedAt: null, canceledAt: null, effectiveAt: { $gte: t } }, { orderBy: { effectiveAt: 'desc' } });
      for (const c of pending) await this.revertScheduled(tx, sub, c, now);
      const applied = input.at === 'immediately';
      const change = tx.create(SubscriptionChange, {
        organizationId,
        subscriptionId: sub.id,
        kind: 'cancel',
        effectiveAt: t,
        data: { at: input.at, ends_at: t.toISOString(), canceled_changes: pending.map((c) => c.id) },
        appliedAt: applied ? now : null,
      });
      sub.endsAt = t;
      if (applied) sub.status = 'canceled';
      this.audit.record(tx, {
        organizationId,
        action: applied ? 'subscription.canceled' : 'subscription.cancellation_scheduled',
        resourceType: 'subscription',
        resourceId: sub.id,
        data: { change_id: change.id, at: input.at, ends_at: t.toISOString(), canceled_changes: pending.map((c) => c.id) },
      });
      await tx.flush();
      await this.clipPeriods(tx, sub.id, serviceEndBoundary(t));
      if (applied) await this.applied(tx, change, sub, now);
      return { change, detail: await this.detailOf(tx, sub, now) };
    });
  }

  /**
   * Cancels a scheduled change (one not yet in effect) and undoes what recording it did to add-on
   * ranges, the service end or billing periods. A change canceled before is returned as it is.
   */
  async cancelScheduledChange(em: EntityManager, organizationId: string, id: string, changeId: string, now = new Date()): Promise<RecordedChange> {
    return em.transactional(async (tx) => {
      const sub = await this.find(tx, organizationId, id, true);
      const change = /^[0-9a-f-]{36}$/i.test(changeId) ? await tx.findOne(SubscriptionChange, { id: changeId, subscriptionId: sub.id, organizationId }) : null;
      if (!change) throw new NotFoundError('scheduled change', changeId);
      if (change.canceledAt) return { change, detail: await this.detailOf(tx, sub, now) };
      if (change.appliedAt || change.effectiveAt <= now) {
        throw new UnprocessableError('change_not_scheduled', `change ${change.id} took effect at ${change.effectiveAt.toISOString()}; only scheduled changes can be canceled`, 'change_id');
      }
      const later = await tx.findOne(SubscriptionChange, {
        subscriptionId: sub.id,
        canceledAt: null,
        id: { $ne: change.id },
        kind: change.kind,
        effectiveAt: { $gt: change.effectiveAt },
        ...(change.kind === 'addon' ? { data: { product_id: change.data.product_id } } : {}),
      });
      if (later) {
        throw new UnprocessableError('change_out_of_order', `a later ${change.kind} change (${later.id}) is recorded; cancel it first`, 'change_id', { change_id: later.id });
      }
      await this.revertScheduled(tx, sub, change, now);
      this.audit.record(tx, {
        organizationId,
        action: 'subscription.scheduled_change_canceled',
        resourceType: 'subscription',
        resourceId: sub.id,
        data: { change_id: change.id, kind: change.kind, effective_at: change.effectiveAt.toISOString() },
      });
      await tx.flush();
      return { change, detail: await this.detailOf(tx, sub, now) };
    });
  }

  /** Records an on-demand charge, billed on the next period invoice (SPEC §2). */
  async addCharge(em: EntityManager, organizationId: string, id: string, input: ChargeInput, now = new Date()): Promise<OnDemandCharge> {
    return em.transactional(async (tx) => {
      const sub = await this.find(tx, organizationId, id, true);
      const quantity = parseDecimalField(input.quantity, 'quantity', { positive: true });
      const unitAmount = parseDecimalField(input.unit_amount, 'unit_amount', {});
      const date = parseInstant(input.date, now, 'date');
      if (date < sub.startedAt) {
        throw new UnprocessableError('date_before_start', `date is before the subscription started (${sub.startedAt.toISOString()})`, 'date');
      }
      if (sub.endsAt && date >= serviceEndBoundary(sub.endsAt)) {
        throw new UnprocessableError('date_after_end', `date is after the subscription's service ended (${sub.endsAt.toISOString()})`, 'date');
      }
      if (input.product_key !== undefined) {
        const product = await tx.findOne(Product, { organizationId, key: input.product_key });
        if (!product) throw new NotFoundError('product', input.product_key, 'product_key');
        if (product.kind !== 'one_time') {
          throw new UnprocessableError('not_a_one_time_product', `${input.product_key} is a ${product.kind} product; on-demand charges name one_time products`, 'product_key');
        }
      }
      const charge = tx.create(OnDemandCharge, {
        organizationId,
        subscriptionId: sub.id,
        description: input.description,
        quantity,
        unitAmount,
        date,
        productKey: input.product_key ?? null,
      });
      this.audit.record(tx, {
        organizationId,
        action: 'subscription.charge_added',
        resourceType: 'subscription',
        resourceId: sub.id,
        data: { charge_id: charge.id, description: input.description, quantity, unit_amount: unitAmount, date: date.toISOString(), product_key: input.product_key ?? null },
      });
      await tx.flush();
      return charge;
    });
  }

  /** A subscription's on-demand charges by date (404 for another organization's subscription). */
  async charges(em: EntityManager, organizationId: string, id: string): Promise<OnDemandCharge[]> {
    const sub = await this.find(em, organizationId, id);
    return em.find(OnDemandCharge, { subscriptionId: sub.id }, { orderBy: { date: 'asc', id: 'asc' } });
  }

  // ------------------------------------------------------------------------------------------

  private async find(em: EntityManager, organizationId: string, id: string, lock = false): Promise<Subscription> {
    const sub = /^[0-9a-f-]{36}$/i.test(id)
      ? await em.findOne(Subscription, { organizationId, id }, lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {})
      : null;
    if (!sub) throw new NotFoundError('subscription', id);
    return sub;
  }

  private async detailOf(em: EntityManager, sub: Subscription, asOf: Date): Promise<SubscriptionDetail> {
    const customer = await em.findOneOrFail(Customer, { id: sub.customerId });
    const pinned = (await this.catalog.pinnedVersions(em, sub.organizationId, [sub.planVersionId])).get(sub.planVersionId)!;
    const addons = await em.find(SubscriptionAddon, { subscriptionId: sub.id }, { orderBy: { productKey: 'asc', effectiveFrom: 'asc' } });
    const changes = await em.find(SubscriptionChange, { subscriptionId: sub.id }, { orderBy: { effectiveAt: 'asc', createdAt: 'asc', id: 'asc' } });
    const periods = await this.periods.list(em, sub.id);
    return { subscription: sub, customer, plan: pinned.plan, version: pinned.version, addons, changes, periods, state: await this.stateOf(em, sub, asOf, addons, changes), asOf };
  }

  private async stateOf(em: EntityManager, sub: Subscription, t: Date, addons?: SubscriptionAddon[], changes?: SubscriptionChange[]): Promise<SubscriptionStateAt> {
    const rows = addons ?? (await em.find(SubscriptionAddon, { subscriptionId: sub.id }));
    const all = (changes ?? (await em.find(SubscriptionChange, { subscriptionId: sub.id, kind: { $in: ['seats', 'plan'] } }, { orderBy: { effectiveAt: 'asc', createdAt: 'asc', id: 'asc' } }))).filter(
      (c) => !c.canceledAt,
    );
    return {
      at: t,
      planVersionId: planVersionAt(sub, t, all),
      seats: await this.seatsAt(em, sub, t, all),
      addons: rows
        .filter((r) => r.effectiveFrom <= t && (!r.effectiveTo || r.effectiveTo > t))
        .map((r) => ({ productKey: r.productKey, productId: r.productId, quantity: r.quantity }))
        .sort((a, b) => (a.productKey < b.productKey ? -1 : a.productKey > b.productKey ? 1 : 0)),
    };
  }

  /** Seats in force at t, from the seat changes (the subscription's own seats when none). */
  private async seatsAt(em: EntityManager, sub: Subscription, t: Date, all?: SubscriptionChange[]): Promise<number> {
    const changes = (all ?? (await em.find(SubscriptionChange, { subscriptionId: sub.id, kind: 'seats', canceledAt: null }, { orderBy: { effectiveAt: 'asc', createdAt: 'asc', id: 'asc' } }))).filter(
      (c) => c.kind === 'seats' && !c.canceledAt,
    );
    const last = changes.filter((c) => c.effectiveAt <= t).pop();
    if (last) return Number(last.data.seats);
    if (changes.length) return Number(changes[0].data.previous_seats);
    return sub.seats;
  }

  /** Runs the lifecycle hooks of a change that has just taken effect, then writes what they changed. */
  private async applied(tx: EntityManager, change: SubscriptionChange, sub: Subscription, now: Date): Promise<void> {
    await this.hooks.changeApplied(tx, change, sub, now);
    await tx.flush();
  }

  private assertChangeable(sub: Subscription, now: Date): void {
    if (sub.status !== 'active' || (sub.endsAt && sub.endsAt <= now)) {
      throw new UnprocessableError('subscription_canceled', `subscription ${sub.id} is canceled`, 'subscription');
    }
  }

  /** The end of the billing period in force now (or of the first one, for a subscription not started yet). */
  private async currentPeriodEnd(em: EntityManager, sub: Subscription, now: Date): Promise<Date> {
    const ref = sub.startedAt > now ? sub.startedAt : now;
    const row = await this.periods.containing(em, sub.id, ref);
    return row ? row.periodEnd : new Date(periodContaining(sub.billingAnchor, ref).end);
  }

  /** Removes the periods starting at or after `boundary` and ends the one containing it there. */
  private async clipPeriods(tx: EntityManager, subscriptionId: string, boundary: Date): Promise<void> {
    await tx.execute('delete from billing_periods where subscription_id = ? and period_start >= ?', [subscriptionId, boundary.toISOString()]);
    await tx.execute('update billing_periods set period_end = ? where subscription_id = ? and period_start < ? and period_end > ?', [
      boundary.toISOString(),
      subscriptionId,
      boundary.toISOString(),
      boundary.toISOString(),
    ]);
  }

  /** Marks a scheduled change canceled and undoes what recording it did. */
  private async revertScheduled(tx: EntityManager, sub: Subscription, change: SubscriptionChange, now: Date): Promise<void> {
    change.canceledAt = now;
    switch (change.kind) {
      case 'plan': {
        const closed = (change.data.dropped_addons as { range_id: string }[] | undefined) ?? [];
        if (closed.length) {
          const ranges = await tx.find(SubscriptionAddon, { id: { $in: closed.map((c) => c.range_id) } });
          for (const r of ranges) if (r.effectiveTo && r.effectiveTo.getTime() === change.effectiveAt.getTime()) r.effectiveTo = null;
        }
        break;
      }
      case 'addon': {
        const productId = String(change.data.product_id);
        const ranges = await tx.find(SubscriptionAddon, { subscriptionId: sub.id, productId }, { orderBy: { effectiveFrom: 'asc' } });
        const opened = ranges.find((r) => r.effectiveFrom.getTime() === change.effectiveAt.getTime());
        if (opened) tx.remove(opened);
        await tx.flush();
        const closedAt = ranges.find((r) => r !== opened && r.effectiveTo && r.effectiveTo.getTime() === change.effectiveAt.getTime());
        if (closedAt) closedAt.effectiveTo = opened?.effectiveTo ?? null;
        break;
      }
      case 'cancel': {
        sub.endsAt = null;
        await tx.flush();
        await this.periods.ensureFor(tx, sub, periodHorizon(sub, now));
        break;
      }
      case 'seats':
        break;
    }
    await tx.flush();
  }

  /**
   * When a change may take effect: while the subscription is active, not before it started, not
   * before the current billing period (earlier periods may be invoiced), not after its end, and
   * not before a change of the same thing already recorded (history is written in order).
   */
  private async checkEffective(em: EntityManager, sub: Subscription, t: Date, now: Date, kind: SubscriptionChangeKind, productId?: string): Promise<void> {
    if (sub.status !== 'active') throw new UnprocessableError('subscription_canceled', `subscription ${sub.id} is canceled`, 'subscription');
    if (t < sub.startedAt) {
      throw new UnprocessableError('effective_before_start', `effective_at is before the subscription started (${sub.startedAt.toISOString()})`, 'effective_at');
    }
    if (sub.endsAt && t >= sub.endsAt) {
      throw new UnprocessableError('effective_after_end', `effective_at is not before the subscription ends (${sub.endsAt.toISOString()})`, 'effective_at');
    }
    if (now >= sub.startedAt) {
      const current = new Date(periodContaining(sub.billingAnchor, now).start);
      if (t < current) {
        throw new UnprocessableError(
          'effective_before_current_period',
          `effective_at is before the current billing period (from ${current.toISOString()}); earlier periods are not changed retroactively`,
          'effective_at',
        );
      }
    }
    const later = await em.findOne(
      SubscriptionChange,
      { subscriptionId: sub.id, kind, canceledAt: null, effectiveAt: { $gt: t }, ...(productId ? { data: { product_id: productId } } : {}) },
      { orderBy: { effectiveAt: 'desc' } },
    );
    if (later) {
      throw new UnprocessableError(
        'change_out_of_order',
        `a ${kind} change effective ${later.effectiveAt.toISOString()} is already recorded; changes are recorded in order of their effective time`,
        'effective_at',
        { change_id: later.id },
      );
    }
  }

  /** Add-ons requested for a version: addon products it lists, each once, with a quantity >= 1. */
  private async resolveAddons(
    em: EntityManager,
    version: PlanVersion,
    requested: { product_key: string; quantity?: number }[],
    fieldPrefix?: string,
  ): Promise<{ productKey: string; productId: string; quantity: number }[]> {
    if (!requested.length) return [];
    const rows = await this.catalog.versionProducts(em, version.id);
    const offered = new Map(rows.filter((r) => r.kind === 'addon').map((r) => [r.productKey, r.productId]));
    const seen = new Set<string>();
    return requested.map((a, i) => {
      const field = fieldPrefix ?? `addons[${i}].product_key`;
      const productId = offered.get(a.product_key);
      if (!productId) {
        throw new UnprocessableError(
          'addon_not_in_plan',
          `${a.product_key} is not an add-on of ${version.document.plan_key} v${version.version} (add-ons offered: ${[...offered.keys()].join(', ') || 'none'})`,
          field,
        );
      }
      if (seen.has(a.product_key)) throw new ValidationError('duplicate_addon', `${a.product_key} is listed twice`, field);
      seen.add(a.product_key);
      return { productKey: a.product_key, productId, quantity: a.quantity ?? 1 };
    });
  }
}

/** The plan version in force at t: the latest plan change effective by then, else the one the first change replaced. */
function planVersionAt(sub: Subscription, t: Date, changes: SubscriptionChange[]): string {
  const plans = changes.filter((c) => c.kind === 'plan' && !c.canceledAt);
  const last = plans.filter((c) => c.effectiveAt <= t).pop();
  if (last) return String(last.data.plan_version_id);
  if (plans.length) return String(plans[0].data.previous_plan_version_id);
  return sub.planVersionId;
}

const DECIMAL_RE = /^\d+(\.\d+)?$/;

/** A decimal string with at most 12 decimals (`positive`: > 0), normalized. */
function parseDecimalField(v: string, field: string, opts: { positive?: boolean }): string {
  if (typeof v !== 'string' || !DECIMAL_RE.test(v) || (v.split('.')[1]?.length ?? 0) > 12) {
    throw new ValidationError('invalid_value', `${field} must be a non-negative decimal string with at most 12 decimals`, field);
  }
  const d = dec(v);
  if (opts.positive && !d.gt(0)) throw new ValidationError('invalid_value', `${field} must be greater than 0`, field);
  return d.toFixed();
}

function overlap(customer: Customer, existing?: string): ConflictError {
  return new ConflictError(
    'subscription_overlap',
    `customer ${customer.externalId} already has a subscription in force${existing ? ` (${existing})` : ''} at that time; a customer has at most one subscription at any instant`,
    'started_at',
    existing ? { subscription_id: existing } : undefined,
  );
}
