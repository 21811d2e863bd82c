import { Injectable } from '@nestjs/common';
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
import { CatalogService, type Plan, type PlanVersion } from '@closebook/catalog';
import { periodContaining } from '@closebook/rating';
import { Customer } from './entities/customer.entity';
import { Subscription } from './entities/subscription.entity';
import { SubscriptionAddon } from './entities/subscription-addon.entity';
import { SubscriptionChange, type SubscriptionChangeKind } from './entities/subscription-change.entity';
import { BillingPeriod } from './entities/billing-period.entity';
import { CustomersService } from './customers.service';
import { BillingPeriodsService, periodHorizon } from './billing-periods.service';

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
  constructor(
    private readonly audit: AuditService,
    private readonly customers: CustomersService,
    private readonly catalog: CatalogService,
    private readonly periods: BillingPeriodsService,
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
   * Applies seat and add-on changes that have fallen due (scheduled for the future when recorded):
   * the subscription's current seats take the latest due seat change. Returns the changes applied.
   */
  async applyDueChanges(em: EntityManager, now = new Date(), batch = 500): Promise<number> {
    return em.transactional(async (tx) => {
      const due = await tx.find(
        SubscriptionChange,
        { appliedAt: null, effectiveAt: { $lte: now }, kind: { $in: ['seats', 'addon'] } },
        { orderBy: { subscriptionId: 'asc', effectiveAt: 'asc', createdAt: 'asc' }, limit: batch },
      );
      if (!due.length) return 0;
      const subs = await tx.find(Subscription, { id: { $in: [...new Set(due.map((c) => c.subscriptionId))] } }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      const byId = new Map(subs.map((s) => [s.id, s]));
      for (const change of due) {
        const sub = byId.get(change.subscriptionId);
        if (change.kind === 'seats' && sub) sub.seats = Number(change.data.seats);
        change.appliedAt = now;
        this.audit.record(tx, {
          organizationId: change.organizationId,
          action: 'subscription.change_applied',
          resourceType: 'subscription',
          resourceId: change.subscriptionId,
          data: { change_id: change.id, kind: change.kind, effective_at: change.effectiveAt.toISOString(), ...change.data },
        });
      }
      await tx.flush();
      return due.length;
    });
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
    const changes = await em.find(SubscriptionChange, { subscriptionId: sub.id }, { orderBy: { effectiveAt: 'asc', createdAt: 'asc' } });
    const periods = await this.periods.list(em, sub.id);
    return { subscription: sub, customer, plan: pinned.plan, version: pinned.version, addons, changes, periods, state: await this.stateOf(em, sub, asOf, addons, changes), asOf };
  }

  private async stateOf(em: EntityManager, sub: Subscription, t: Date, addons?: SubscriptionAddon[], changes?: SubscriptionChange[]): Promise<SubscriptionStateAt> {
    const rows = addons ?? (await em.find(SubscriptionAddon, { subscriptionId: sub.id }));
    return {
      at: t,
      planVersionId: sub.planVersionId,
      seats: await this.seatsAt(em, sub, t, changes),
      addons: rows
        .filter((r) => r.effectiveFrom <= t && (!r.effectiveTo || r.effectiveTo > t))
        .map((r) => ({ productKey: r.productKey, productId: r.productId, quantity: r.quantity }))
        .sort((a, b) => (a.productKey < b.productKey ? -1 : a.productKey > b.productKey ? 1 : 0)),
    };
  }

  /** Seats in force at t, from the seat changes (the subscription's own seats when none). */
  private async seatsAt(em: EntityManager, sub: Subscription, t: Date, all?: SubscriptionChange[]): Promise<number> {
    const changes = (all ?? (await em.find(SubscriptionChange, { subscriptionId: sub.id, kind: 'seats' }, { orderBy: { effectiveAt: 'asc', createdAt: 'asc' } }))).filter(
      (c) => c.kind === 'seats',
    );
    const last = changes.filter((c) => c.effectiveAt <= t).pop();
    if (last) return Number(last.data.seats);
    if (changes.length) return Number(changes[0].data.previous_seats);
    return sub.seats;
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
      { subscriptionId: sub.id, kind, effectiveAt: { $gt: t }, ...(productId ? { data: { product_id: productId } } : {}) },
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

function overlap(customer: Customer, existing?: string): ConflictError {
  return new ConflictError(
    'subscription_overlap',
    `customer ${customer.externalId} already has a subscription in force${existing ? ` (${existing})` : ''} at that time; a customer has at most one subscription at any instant`,
    'started_at',
    existing ? { subscription_id: existing } : undefined,
  );
}
