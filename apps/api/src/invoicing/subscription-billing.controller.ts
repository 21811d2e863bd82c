import { Controller, Get, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, READ_ROLES, Roles, ZBody, ZQuery, type Principal } from '@closebook/platform';
import { AllowanceLedgerService, PeriodRatingService, SubscriptionBillingService, type TransitionOutcome } from '@closebook/invoicing';
import { SubscriptionsService } from '@closebook/subscriptions';
import { presentChange, presentSubscription, subscriptionView } from '../customers/customers.views';
import {
  bucketView,
  cancelBody,
  chargeBody,
  chargeView,
  invoiceSummaryView,
  ledgerQuery,
  pendingItemView,
  presentBucket,
  presentCharge,
  presentInvoiceSummary,
  presentPending,
  presentPreview,
  presentUpcoming,
  transitionBody,
  transitionPreviewView,
  upcomingView,
} from './invoicing.views';

const changeOutcomeView = z.object({
  change: z.record(z.string(), z.unknown()),
  subscription: subscriptionView,
  invoice: invoiceSummaryView.nullable().meta({ description: 'The immediate transition invoice (draft), if any' }),
  deferred_lines: z.array(pendingItemView).meta({ description: 'Lines waiting for the next period invoice' }),
});

function presentOutcome(o: TransitionOutcome) {
  return {
    change: presentChange(o.change, o.detail.asOf),
    subscription: presentSubscription(o.detail),
    invoice: o.invoice ? presentInvoiceSummary(o.invoice) : null,
    deferred_lines: o.deferred.map(presentPending),
  };
}

/** Subscription routes with a money effect (SPEC §2, §4); the subscription's own routes are in customers/. */
@Controller('subscriptions')
export class SubscriptionBillingController {
  constructor(
    private readonly billing: SubscriptionBillingService,
    private readonly rating: PeriodRatingService,
    private readonly ledger: AllowanceLedgerService,
    private readonly subscriptions: SubscriptionsService,
    private readonly em: EntityManager,
  ) {}

  @Post(':id/transition-plan/preview')
  @Roles('finance', 'support')
  @ApiRoute({
    summary: 'Preview a plan transition: direction, timing, strategy, the immediate invoice and deferred lines (changes nothing)',
    tags: ['subscriptions'],
    response: transitionPreviewView,
    errors: [422],
  })
  async preview(@Caller() caller: Principal, @Param('id') id: string, @ZBody(transitionBody) body: z.infer<typeof transitionBody>) {
    return presentPreview(await this.billing.preview(this.em, caller.organizationId, id, body));
  }

  @Post(':id/transition-plan')
  @Roles('finance')
  @ApiRoute({
    summary: 'Move the subscription to another plan (upgrades immediate, downgrades at period end by default)',
    description:
      'Immediate changes split the period into segments (prorata allowance) and bill the flat-fee difference per proration strategy (request, else plan, else organization): an immediate transition invoice and/or lines on the next period invoice. Scheduled changes are listed in scheduled_changes and can be canceled. Emits subscription.plan_changed (and subscription.converted when leaving a zero-fee plan) when the change takes effect.',
    tags: ['subscriptions'],
    response: changeOutcomeView,
    errors: [422],
  })
  async transition(@Caller() caller: Principal, @Param('id') id: string, @ZBody(transitionBody) body: z.infer<typeof transitionBody>) {
    return presentOutcome(await this.billing.transition(this.em, caller.organizationId, id, body));
  }

  @Post(':id/scheduled-changes/:change_id/cancel')
  @Roles('finance')
  @ApiRoute({ summary: 'Cancel a scheduled change before it takes effect', tags: ['subscriptions'], response: z.object({ change: z.record(z.string(), z.unknown()), subscription: subscriptionView }), errors: [422] })
  async cancelScheduled(@Caller() caller: Principal, @Param('id') id: string, @Param('change_id') changeId: string) {
    const r = await this.billing.cancelScheduledChange(this.em, caller.organizationId, id, changeId);
    return { change: presentChange(r.change, r.detail.asOf), subscription: presentSubscription(r.detail) };
  }

  @Post(':id/cancel')
  @Roles('finance')
  @ApiRoute({
    summary: 'Cancel the subscription at period end or immediately (unused flat fees credited on a transition invoice)',
    tags: ['subscriptions'],
    response: changeOutcomeView,
    errors: [422],
  })
  async cancel(@Caller() caller: Principal, @Param('id') id: string, @ZBody(cancelBody) body: z.infer<typeof cancelBody>) {
    return presentOutcome(await this.billing.cancel(this.em, caller.organizationId, id, body));
  }

  @Post(':id/charges')
  @Roles('finance')
  @ApiRoute({ summary: 'Record an on-demand charge, billed on the next period invoice', tags: ['subscriptions'], response: chargeView, errors: [422] })
  async addCharge(@Caller() caller: Principal, @Param('id') id: string, @ZBody(chargeBody) body: z.infer<typeof chargeBody>) {
    return presentCharge(await this.billing.addCharge(this.em, caller.organizationId, id, body));
  }

  @Get(':id/charges')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: "A subscription's on-demand charges", tags: ['subscriptions'], response: z.object({ data: z.array(chargeView) }) })
  async charges(@Caller() caller: Principal, @Param('id') id: string) {
    return { data: (await this.subscriptions.charges(this.em, caller.organizationId, id)).map(presentCharge) };
  }

  @Get(':id/upcoming-invoice')
  @Roles(...READ_ROLES)
  @ApiRoute({
    summary: 'What the current period invoice would be if the period closed now (an estimate; nothing is written)',
    tags: ['invoices'],
    response: upcomingView,
    errors: [422],
  })
  async upcoming(@Caller() caller: Principal, @Param('id') id: string) {
    return presentUpcoming(await this.rating.upcoming(this.em, caller.organizationId, id));
  }

  @Get(':id/allowance-ledger')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'The allowance ledger: every grant with its drawdowns and expiry, replayed per bucket', tags: ['usage'], response: z.object({ data: z.array(bucketView) }) })
  async allowanceLedger(@Caller() caller: Principal, @Param('id') id: string, @ZQuery(ledgerQuery) q: z.infer<typeof ledgerQuery>) {
    return { data: (await this.ledger.replay(this.em, caller.organizationId, id, q)).map(presentBucket) };
  }
}
