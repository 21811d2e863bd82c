import { Controller, Get, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, pageSchema, Roles, toPage, ZBody, ZQuery, type Principal } from '@closebook/platform';
import { CustomersService, SubscriptionsService } from '@closebook/subscriptions';
import {
  createCustomerBody,
  createSubscriptionBody,
  customerView,
  listQuery,
  presentCustomer,
  presentSubscription,
  presentSummary,
  subscriptionSummaryView,
  subscriptionView,
} from './customers.views';

@Controller('customers')
export class CustomersController {
  constructor(
    private readonly customers: CustomersService,
    private readonly subscriptions: SubscriptionsService,
    private readonly em: EntityManager,
  ) {}

  @Post()
  @Roles('finance')
  @ApiRoute({ summary: 'Create a customer', tags: ['customers'], response: customerView, errors: [409] })
  async create(@Caller() caller: Principal, @ZBody(createCustomerBody) body: z.infer<typeof createCustomerBody>) {
    return presentCustomer(await this.em.transactional((tx) => this.customers.create(tx, caller.organizationId, body)));
  }

  @Get()
  @Roles('finance', 'support', 'auditor')
  @ApiRoute({ summary: 'List customers, newest first', tags: ['customers'], response: pageSchema(customerView) })
  async list(@Caller() caller: Principal, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    return toPage(await this.customers.list(this.em, caller.organizationId, q), q.limit, presentCustomer);
  }

  @Get(':id')
  @Roles('finance', 'support', 'auditor')
  @ApiRoute({ summary: 'A customer by its id or its external id', tags: ['customers'], response: customerView })
  async get(@Caller() caller: Principal, @Param('id') id: string) {
    return presentCustomer(await this.customers.get(this.em, caller.organizationId, id));
  }

  @Post(':id/subscriptions')
  @Roles('finance')
  @ApiRoute({
    summary: 'Subscribe a customer to a published plan version',
    description:
      'Pins the given (or latest published) version, with seats, add-ons and a billing anchor; generates the billing periods (the first prorated when starting mid-cycle) through the one after the current period. A customer has at most one subscription in force at any instant (409 subscription_overlap).',
    tags: ['subscriptions'],
    response: subscriptionView,
    errors: [409, 422],
  })
  async subscribe(@Caller() caller: Principal, @Param('id') id: string, @ZBody(createSubscriptionBody) body: z.infer<typeof createSubscriptionBody>) {
    return presentSubscription(await this.subscriptions.create(this.em, caller.organizationId, id, body));
  }

  @Get(':id/subscriptions')
  @Roles('finance', 'support', 'auditor')
  @ApiRoute({ summary: "A customer's subscriptions, newest first", tags: ['subscriptions'], response: pageSchema(subscriptionSummaryView) })
  async subscriptionsOf(@Caller() caller: Principal, @Param('id') id: string, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    const { subscriptions, versions } = await this.subscriptions.listForCustomer(this.em, caller.organizationId, id, q);
    return toPage(subscriptions, q.limit, (s) => {
      const pinned = versions.get(s.planVersionId)!;
      return presentSummary(s, pinned.plan, pinned.version);
    });
  }
}
