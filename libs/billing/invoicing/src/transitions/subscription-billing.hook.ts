import { Injectable, OnModuleInit } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { OrganizationsService, OutboxService } from '@closebook/platform';
import { RollupsService } from '@closebook/metering';
import {
  BillingPeriod,
  BillingPeriodsService,
  Customer,
  SubscriptionAddon,
  SubscriptionHooks,
  SubscriptionsService,
  toRatingState,
  type RatedState,
  type Subscription,
  type SubscriptionChange,
  type SubscriptionLifecycleHook,
  type SubscriptionStateAt,
} from '@closebook/subscriptions';
import {
  firstPeriod,
  isConversion,
  periodContaining,
  rateOpeningInvoice,
  rateTransition,
  type ProrationStrategy,
  type TransitionResult,
} from '@closebook/rating';
import { Invoice } from '../entities/invoice.entity';
import { PendingItem } from '../entities/pending-item.entity';
import { SubscriptionConversion } from '../entities/subscription-conversion.entity';
import { InvoiceWriter } from '../rating/invoice-writer';
import { lockSubscriptions, rate } from '../rating/invoice-content';
import { taxRateOf } from '../rating/period-rating.service';
import { openingIssueDate, transitionIssueDate } from '../posting/accounting-dates';

const iso = (d: Date) => d.toISOString();
const DAY_MS = 86_400_000;

/** A change to rate: the terms before and after, when, and how it was asked for. */
export interface ChangeToRate {
  from: RatedState;
  to: RatedState;
  effectiveAt: Date;
  /** When the change was recorded: an invoice rated before it billed the old terms. */
  recordedAt: Date;
  requestedStrategy?: ProrationStrategy | null;
  /** Cancellation: always credited at once. */
  forcedStrategy?: ProrationStrategy;
}

export interface RatedChange {
  /** Null when there is nothing to prorate (see `covered`). */
  result: TransitionResult | null;
  /**
   * True when the change takes effect exactly at a cycle start and the invoice billing that cycle's
   * fees in advance has not been rated before it was recorded: that invoice bills the new terms.
   */
  covered: boolean;
}

/**
 * Invoicing's side of subscription writes (registered as a subscriptions lifecycle hook, so it
 * commits in the same transaction): the opening invoice when a subscription is created, and the
 * money effect of every change when it takes effect — plan, seats, add-ons, cancellation — through
 * `rateTransition`: an immediate transition invoice and/or lines deferred to the next period
 * invoice, per the proration strategy; `subscription.plan_changed` (and `subscription.converted`
 * with its conversion facts) for plan changes.
 */
@Injectable()
export class SubscriptionBillingHook implements SubscriptionLifecycleHook, OnModuleInit {
  constructor(
    private readonly hooks: SubscriptionHooks,
    private readonly subscriptions: SubscriptionsService,
    private readonly periods: BillingPeriodsService,
    private readonly orgs: OrganizationsService,
    private readonly writer: InvoiceWriter,
    private readonly outbox: OutboxService,
    private readonly rollups: RollupsService,
  ) {}

  onModuleInit(): void {
    this.hooks.register(this);
  }

  /** The opening invoice: the first period's flat fees in advance, prorated for a mid-cycle start (idempotent per subscription). */
  async subscriptionCreated(tx: EntityManager, sub: Subscription, now: Date): Promise<void> {
    await lockSubscriptions(tx, [sub.id]);
    if (await tx.findOne(Invoice, { organizationId: sub.organizationId, sourceKey: `opening:${sub.id}` })) return;
    const state = await this.subscriptions.ratedState(tx, await this.subscriptions.stateAt(tx, sub.id, sub.startedAt), sub.organizationId);
    const customer = await tx.findOneOrFail(Customer, { id: sub.customerId });
    const rated = rate(`the opening invoice of subscription ${sub.id}`, () =>
      rateOpeningInvoice({
        subscription_id: sub.id,
        subscription_start: iso(sub.startedAt),
        anchor_day: sub.billingAnchor,
        state: toRatingState(state.plan, state.seats, state.addons),
        tax_rate: taxRateOf(customer),
      }),
    );
    const first = await tx.findOne(BillingPeriod, { subscriptionId: sub.id, seq: 1 });
    const org = await this.orgs.get(tx, sub.organizationId);
    await this.writer.write(tx, {
      organizationId: sub.organizationId,
      customerId: sub.customerId,
      subscriptionId: sub.id,
      kind: 'opening',
      billingPeriodId: first?.id ?? null,
      sourceKey: `opening:${sub.id}`,
      issueDate: openingIssueDate(sub.startedAt),
      rated,
      now,
      draftWindowMinutes: org.draftWindowMinutes,
    });
  }

  /** The money effect of a change that has just taken effect (see the class comment). */
  async changeApplied(tx: EntityManager, change: SubscriptionChange, sub: Subscription, now: Date): Promise<void> {
    if (change.kind === 'cancel' && change.data.at !== 'immediately') return;
    await lockSubscriptions(tx, [sub.id]);
    const { from, to } = await this.statesOf(tx, sub, change);
    const rated = await this.rateChange(tx, sub, {
      from,
      to,
      effectiveAt: change.effectiveAt,
      recordedAt: change.createdAt,
      requestedStrategy: (change.data.proration_strategy as ProrationStrategy | null | undefined) ?? null,
      ...(change.kind === 'cancel' ? { forcedStrategy: 'prorated_immediately' as const } : {}),
    });
    let invoice: Invoice | null = null;
    let deferred = 0;
    if (rated.result?.immediate) {
      const org = await this.orgs.get(tx, sub.organizationId);
      const period = await this.periods.containing(tx, sub.id, change.effectiveAt);
      invoice = await this.writer.write(tx, {
        organizationId: sub.organizationId,
        customerId: sub.customerId,
        subscriptionId: sub.id,
        kind: 'transition',
        billingPeriodId: period?.id ?? null,
        sourceKey: `transition:${change.id}`,
        issueDate: transitionIssueDate(change.effectiveAt),
        rated: rated.result.immediate,
        now,
        draftWindowMinutes: org.draftWindowMinutes,
        sourceOf: () => ({ type: 'subscription_change', id: change.id }),
      });
    }
    for (const line of rated.result?.deferred_lines ?? []) {
      tx.create(PendingItem, {
        organizationId: sub.organizationId,
        subscriptionId: sub.id,
        kind: 'deferred_line',
        payload: line,
        billableFrom: change.effectiveAt,
        sourceType: 'subscription_change',
        sourceId: change.id,
        description: line.description,
      });
      deferred++;
    }
    const conversion = change.kind === 'plan' && isConversion(toRatingState(from.plan, from.seats, from.addons), toRatingState(to.plan, to.seats, to.addons));
    change.data = {
      ...change.data,
      billing: {
        strategy: rated.result?.strategy ?? null,
        applied_strategy: rated.result?.applied_strategy ?? null,
        proration: rated.result ? rated.result.proration.label : null,
        covered_by_period_invoice: rated.covered,
        transition_invoice_id: invoice?.id ?? null,
        deferred_lines: deferred,
      },
    };
    if (change.kind === 'plan') await this.announcePlanChange(tx, sub, change, from, to, rated, invoice, conversion);
    // What the period's rollups cover changed (the meters of the new plan, a shorter last period).
    if (change.kind === 'plan' || change.kind === 'cancel') await this.rollups.markDirty(tx, sub.id, { from: change.effectiveAt });
    await tx.flush();
  }

  /**
   * Rates a change with `rateTransition` (strategy: requested, else the current plan's, else the
   * organization's). Nothing is prorated when the change takes effect exactly at a cycle start
   * before the invoice billing that cycle in advance was rated: that invoice bills the new terms.
   */
  async rateChange(tx: EntityManager, sub: Subscription, c: ChangeToRate): Promise<RatedChange> {
    if (await this.coveredByAdvanceInvoice(tx, sub, c.effectiveAt, c.recordedAt)) return { result: null, covered: true };
    const org = await this.orgs.get(tx, sub.organizationId);
    const customer = await tx.findOneOrFail(Customer, { id: sub.customerId });
    const strategy = c.forcedStrategy ?? c.requestedStrategy ?? undefined;
    const result = rate(`the change of subscription ${sub.id} at ${iso(c.effectiveAt)}`, () =>
      rateTransition({
        subscription_id: sub.id,
        subscription_start: iso(sub.startedAt),
        anchor_day: sub.billingAnchor,
        effective_at: iso(c.effectiveAt),
        from: toRatingState(c.from.plan, c.from.seats, c.from.addons),
        to: toRatingState(c.to.plan, c.to.seats, c.to.addons),
        ...(strategy ? { strategy } : {}),
        organization_strategy: org.prorationStrategy,
        tax_rate: taxRateOf(customer),
      }),
    );
    return { result, covered: false };
  }

  /** The terms just before a change and just after it (undoing only this change, so same-instant changes are not rated twice). */
  async statesOf(tx: EntityManager, sub: Subscription, change: SubscriptionChange): Promise<{ from: RatedState; to: RatedState }> {
    const at = await this.subscriptions.stateAt(tx, sub.id, change.effectiveAt, sub.organizationId);
    let before: SubscriptionStateAt = at;
    let after: SubscriptionStateAt = at;
    switch (change.kind) {
      case 'seats':
        before = { ...at, seats: Number(change.data.previous_seats) };
        break;
      case 'addon': {
        const key = String(change.data.product_key);
        const rest = at.addons.filter((a) => a.productKey !== key);
        const prev = Number(change.data.previous_quantity);
        before = { ...at, addons: sortAddons(prev > 0 ? [...rest, { productKey: key, productId: String(change.data.product_id), quantity: prev }] : rest) };
        break;
      }
      case 'plan': {
        const dropped = (change.data.dropped_addons as { range_id: string }[] | undefined) ?? [];
        const ranges = dropped.length ? await tx.find(SubscriptionAddon, { id: { $in: dropped.map((d) => d.range_id) } }) : [];
        before = {
          ...at,
          planVersionId: String(change.data.previous_plan_version_id),
          addons: sortAddons([...at.addons, ...ranges.map((r) => ({ productKey: r.productKey, productId: r.productId, quantity: r.quantity }))]),
        };
        break;
      }
      case 'cancel':
        after = { ...at, addons: [] };
        break;
    }
    const from = await this.subscriptions.ratedState(tx, before, sub.organizationId);
    const to =
      change.kind === 'cancel'
        ? { ...from, addons: [], plan: { ...from.plan, name: `${from.plan.name} (canceled)`, products: from.plan.products.filter((p) => p.kind === 'metered') } }
        : await this.subscriptions.ratedState(tx, after, sub.organizationId);
    return { from, to };
  }

  private async coveredByAdvanceInvoice(tx: EntityManager, sub: Subscription, t: Date, recordedAt: Date): Promise<boolean> {
    const cycleStart = Date.parse(periodContaining(sub.billingAnchor, t).start);
    if (t.getTime() !== cycleStart) return false;
    const firstStart = Date.parse(firstPeriod(sub.startedAt, sub.billingAnchor).period.start);
    const advance =
      t.getTime() === firstStart
        ? await tx.findOne(Invoice, { subscriptionId: sub.id, kind: 'opening' })
        : await tx.findOne(Invoice, { subscriptionId: sub.id, kind: 'period', periodEnd: t });
    return !advance || advance.createdAt > recordedAt;
  }

  private async announcePlanChange(
    tx: EntityManager,
    sub: Subscription,
    change: SubscriptionChange,
    from: RatedState,
    to: RatedState,
    rated: RatedChange,
    invoice: Invoice | null,
    conversion: boolean,
  ): Promise<void> {
    const d = change.data;
    const payload = {
      subscription_id: sub.id,
      customer_id: sub.customerId,
      change_id: change.id,
      from: { plan_key: from.plan.plan_key, version: from.plan.version, plan_version_id: from.planVersionId },
      to: { plan_key: to.plan.plan_key, version: to.plan.version, plan_version_id: to.planVersionId },
      direction: d.direction,
      timing: d.timing,
      effective_at: iso(change.effectiveAt),
      proration_strategy: rated.result?.applied_strategy ?? null,
      transition_invoice_id: invoice?.id ?? null,
    };
    await this.outbox.emit(tx, { organizationId: sub.organizationId, type: 'subscription.plan_changed', dedupeKey: `subscription.plan_changed:${change.id}`, payload });
    if (!conversion) return;
    const days = Math.floor((change.effectiveAt.getTime() - sub.startedAt.getTime()) / DAY_MS);
    const cohort = iso(sub.startedAt).slice(0, 7);
    if (!(await tx.findOne(SubscriptionConversion, { changeId: change.id }))) {
      tx.create(SubscriptionConversion, {
        organizationId: sub.organizationId,
        subscriptionId: sub.id,
        changeId: change.id,
        customerId: sub.customerId,
        fromPlanVersionId: from.planVersionId,
        toPlanVersionId: to.planVersionId,
        cohortMonth: cohort,
        startedAt: sub.startedAt,
        convertedAt: change.effectiveAt,
        daysToConvert: Math.max(0, days),
      });
    }
    await this.outbox.emit(tx, {
      organizationId: sub.organizationId,
      type: 'subscription.converted',
      dedupeKey: `subscription.converted:${change.id}`,
      payload: { ...payload, cohort_month: cohort, days_to_convert: Math.max(0, days) },
    });
  }
}

function sortAddons<T extends { productKey: string }>(a: T[]): T[] {
  return [...a].sort((x, y) => (x.productKey < y.productKey ? -1 : x.productKey > y.productKey ? 1 : 0));
}
