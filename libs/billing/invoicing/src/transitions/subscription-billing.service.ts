import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { OrganizationsService, UnprocessableError } from '@closebook/platform';
import {
  BillingPeriod,
  SubscriptionsService,
  type CancelInput,
  type ChargeInput,
  type OnDemandCharge,
  type PlanChangeDecision,
  type PlanChangeInput,
  type RecordedChange,
} from '@closebook/subscriptions';
import { resolveStrategy, type ProrationStrategy, type RatedInvoice, type RatedLine } from '@closebook/rating';
import { Invoice } from '../entities/invoice.entity';
import { PendingItem } from '../entities/pending-item.entity';
import { rate } from '../rating/invoice-content';
import { SubscriptionBillingHook } from './subscription-billing.hook';

export interface TransitionPreview {
  decision: PlanChangeDecision;
  /** The strategy that applies (request, else plan, else organization). */
  strategy: ProrationStrategy;
  /** What rateTransition applied (difference_immediately falls back across intervals); null when nothing is prorated. */
  appliedStrategy: ProrationStrategy | null;
  /** The fraction of the cycle left ("10/30 days"), when prorated. */
  proration: string | null;
  /** True for a change at a cycle start that the next period invoice bills at the new terms. */
  coveredByPeriodInvoice: boolean;
  immediate: RatedInvoice | null;
  deferredLines: RatedLine[];
}

export interface TransitionOutcome extends RecordedChange {
  invoice: Invoice | null;
  deferred: PendingItem[];
}

/**
 * The API side of subscription changes with a money effect (SPEC §2): plan transitions and their
 * preview, cancellation, canceling a scheduled change, on-demand charges. Recording is the
 * subscriptions module's; the money effect is written by SubscriptionBillingHook in the same
 * transaction, and read back here for the answer.
 */
@Injectable()
export class SubscriptionBillingService {
  constructor(
    private readonly subscriptions: SubscriptionsService,
    private readonly hook: SubscriptionBillingHook,
    private readonly orgs: OrganizationsService,
  ) {}

  /** What a transition would do, computed exactly as the transition computes it, changing nothing. */
  async preview(em: EntityManager, organizationId: string, subscriptionId: string, input: PlanChangeInput, now = new Date()): Promise<TransitionPreview> {
    const decision = await this.subscriptions.planChangeDecision(em, organizationId, subscriptionId, input, now);
    const org = await this.orgs.get(em, organizationId);
    const strategy = rate('the transition', () => resolveStrategy(decision.requestedStrategy ?? undefined, decision.from.plan, org.prorationStrategy));
    const rated = await this.hook.rateChange(em, decision.subscription, {
      from: decision.from,
      to: decision.to,
      effectiveAt: decision.effectiveAt,
      recordedAt: now,
      requestedStrategy: decision.requestedStrategy,
    });
    return {
      decision,
      strategy,
      appliedStrategy: rated.result?.applied_strategy ?? null,
      proration: rated.result?.proration.label ?? null,
      coveredByPeriodInvoice: rated.covered,
      immediate: rated.result?.immediate ?? null,
      deferredLines: rated.result?.deferred_lines ?? [],
    };
  }

  async transition(em: EntityManager, organizationId: string, subscriptionId: string, input: PlanChangeInput, now = new Date()): Promise<TransitionOutcome> {
    return this.withEffect(em, await this.subscriptions.changePlan(em, organizationId, subscriptionId, input, now));
  }

  async cancel(em: EntityManager, organizationId: string, subscriptionId: string, input: CancelInput, now = new Date()): Promise<TransitionOutcome> {
    return this.withEffect(em, await this.subscriptions.cancel(em, organizationId, subscriptionId, input, now));
  }

  async cancelScheduledChange(em: EntityManager, organizationId: string, subscriptionId: string, changeId: string, now = new Date()): Promise<RecordedChange> {
    return this.subscriptions.cancelScheduledChange(em, organizationId, subscriptionId, changeId, now);
  }

  /**
   * An on-demand charge for the next period invoice. Refused (422 `no_next_invoice`) when the
   * subscription has ended and its last period invoice exists: nothing would ever bill it.
   */
  async addCharge(em: EntityManager, organizationId: string, subscriptionId: string, input: ChargeInput, now = new Date()): Promise<OnDemandCharge> {
    const sub = await this.subscriptions.byId(em, organizationId, subscriptionId);
    if (sub.endsAt) {
      const last = await em.findOne(BillingPeriod, { subscriptionId: sub.id }, { orderBy: { seq: 'desc' } });
      if (last && (await em.findOne(Invoice, { kind: 'period', billingPeriodId: last.id }))) {
        throw new UnprocessableError('no_next_invoice', `subscription ${sub.id} has ended and its last period invoice is issued; bill this charge another way`, 'subscription_id');
      }
    }
    return this.subscriptions.addCharge(em, organizationId, subscriptionId, input, now);
  }

  private async withEffect(em: EntityManager, recorded: RecordedChange): Promise<TransitionOutcome> {
    const c = recorded.change;
    const invoice = await em.findOne(Invoice, { organizationId: c.organizationId, sourceKey: `transition:${c.id}` });
    const deferred = await em.find(PendingItem, { sourceType: 'subscription_change', sourceId: c.id }, { orderBy: { createdAt: 'asc' } });
    return { ...recorded, invoice, deferred };
  }
}
