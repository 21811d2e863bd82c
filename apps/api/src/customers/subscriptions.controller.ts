import { Controller, Get, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, Roles, ZBody, type Principal } from '@closebook/platform';
import { SubscriptionsService, type RecordedChange } from '@closebook/subscriptions';
import { addonBody, changeResultView, presentChange, presentSubscription, seatsBody, subscriptionView } from './customers.views';

const presentRecorded = ({ change, detail }: RecordedChange) => ({ change: presentChange(change, detail.asOf), subscription: presentSubscription(detail) });

@Controller('subscriptions')
export class SubscriptionsController {
  constructor(private readonly subscriptions: SubscriptionsService, private readonly em: EntityManager) {}

  @Get(':id')
  @Roles('finance', 'support', 'auditor')
  @ApiRoute({ summary: 'A subscription with its periods, add-ons and recorded and scheduled changes', tags: ['subscriptions'], response: subscriptionView })
  async get(@Caller() caller: Principal, @Param('id') id: string) {
    return presentSubscription(await this.subscriptions.get(this.em, caller.organizationId, id));
  }

  @Post(':id/seats')
  @Roles('finance')
  @ApiRoute({
    summary: 'Change the seat count, effective now or at effective_at',
    description: 'The change is recorded with its effective time (its money effect is rated from it). Effective now or earlier in the current period, the seats change at once; in the future, when it falls due.',
    tags: ['subscriptions'],
    response: changeResultView,
    errors: [422],
  })
  async seats(@Caller() caller: Principal, @Param('id') id: string, @ZBody(seatsBody) body: z.infer<typeof seatsBody>) {
    return presentRecorded(await this.subscriptions.changeSeats(this.em, caller.organizationId, id, body));
  }

  @Post(':id/addons')
  @Roles('finance')
  @ApiRoute({
    summary: "Set an add-on's quantity (0 removes it), effective now or at effective_at",
    description: 'The add-on must be offered by the pinned plan version. The change is recorded with its effective time; add-on ranges make the schedule.',
    tags: ['subscriptions'],
    response: changeResultView,
    errors: [422],
  })
  async addons(@Caller() caller: Principal, @Param('id') id: string, @ZBody(addonBody) body: z.infer<typeof addonBody>) {
    return presentRecorded(await this.subscriptions.changeAddon(this.em, caller.organizationId, id, body));
  }
}
