import { Controller, Get, Param } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { AllowanceStateService, UsageService } from '@closebook/metering';
import { ApiRoute, Caller, READ_ROLES, Roles, UuidParam, ZQuery, type Principal } from '@closebook/platform';
import { allowanceStateView, periodQuery, usageView } from './metering.views';

@Controller()
@Roles(...READ_ROLES)
export class UsageController {
  constructor(private readonly usage: UsageService, private readonly allowance: AllowanceStateService, private readonly em: EntityManager) {}

  @Get('subscriptions/:id/usage')
  @ApiRoute({ summary: "A subscription's rollups for a billing period (count, aggregate, digest)", tags: ['usage'], response: usageView, errors: [422] })
  async list(@Caller() caller: Principal, @UuidParam('id', 'subscription') id: string, @ZQuery(periodQuery) q: z.infer<typeof periodQuery>) {
    return this.usage.forSubscription(this.em, caller.organizationId, id, { periodStart: q.period });
  }

  @Get('customers/:id/subscriptions/:sub_id/allowance-state')
  @ApiRoute({
    summary: 'Near-real-time allowance state: included, used, remaining, overage so far (an estimate; the period invoice is final)',
    tags: ['usage'],
    response: allowanceStateView,
    errors: [422],
  })
  async allowanceState(
    @Caller() caller: Principal,
    @Param('id') customerId: string,
    @UuidParam('sub_id', 'subscription') subscriptionId: string,
    @ZQuery(periodQuery) q: z.infer<typeof periodQuery>,
  ) {
    return this.allowance.forSubscription(this.em, caller.organizationId, customerId, subscriptionId, { periodStart: q.period });
  }
}
