import { Injectable, Module, OnApplicationBootstrap } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { JobsService } from '@closebook/platform';
import { CatalogModule } from '@closebook/catalog';
import { Customer } from './entities/customer.entity';
import { Subscription } from './entities/subscription.entity';
import { SubscriptionAddon } from './entities/subscription-addon.entity';
import { SubscriptionChange } from './entities/subscription-change.entity';
import { BillingPeriod } from './entities/billing-period.entity';
import { CustomersService } from './customers.service';
import { SubscriptionsService } from './subscriptions.service';
import { BillingPeriodsService } from './billing-periods.service';
import { SubscriptionsJobs } from './subscriptions.jobs';
import { OnDemandCharge } from './entities/on-demand-charge.entity';
import { SubscriptionHooks } from './subscription-hooks';

export const SUBSCRIPTIONS_ENTITIES = [Customer, Subscription, SubscriptionAddon, SubscriptionChange, BillingPeriod, OnDemandCharge];

const services = [CustomersService, SubscriptionsService, BillingPeriodsService, SubscriptionHooks];

/**
 * Customers, subscriptions, add-ons, recorded changes and billing periods (SPEC §2). Its job
 * handlers are registered wherever the module is imported (every app, so the job registry check
 * passes everywhere); the schedules are upserted only by `SubscriptionsSchedulerModule`.
 */
@Module({
  imports: [CatalogModule, MikroOrmModule.forFeature(SUBSCRIPTIONS_ENTITIES)],
  providers: [...services, SubscriptionsJobs],
  exports: [...services, CatalogModule],
})
export class SubscriptionsModule {}

/** Upserts the module's BullMQ job schedulers (keyed in Redis, so every worker replica may). */
@Injectable()
export class SubscriptionsScheduler implements OnApplicationBootstrap {
  constructor(private readonly jobs: JobsService) {}

  async onApplicationBootstrap(): Promise<void> {
    const billing = this.jobs.queue('billing');
    await billing.upsertJobScheduler('subscriptions-extend-periods', { every: 60 * 60 * 1000 }, { name: 'subscriptions.extend-periods', data: {} });
    await billing.upsertJobScheduler('subscriptions-apply-due-changes', { every: 10 * 60 * 1000 }, { name: 'subscriptions.apply-due-changes', data: {} });
  }
}

/** For the worker only: the subscriptions module plus its schedules. */
@Module({
  imports: [SubscriptionsModule],
  providers: [SubscriptionsScheduler],
  exports: [SubscriptionsModule],
})
export class SubscriptionsSchedulerModule {}
