import { Injectable, OnModuleInit } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SubscriptionHooks, type Subscription, type SubscriptionChange, type SubscriptionLifecycleHook } from '@closebook/subscriptions';
import { RollupsService } from './rollups.service';

/**
 * Metering's side of subscription writes (in their transaction): what a rollup covers depends on
 * the subscription, so a new subscription (possibly backdated over events already stored) marks
 * all its periods dirty, and a plan change (other meters) marks the periods from its effective
 * instant on. Seat and add-on changes move allowances, not rollups: nothing to mark.
 */
@Injectable()
export class SubscriptionRollupsHook implements SubscriptionLifecycleHook, OnModuleInit {
  constructor(private readonly hooks: SubscriptionHooks, private readonly rollups: RollupsService) {}

  onModuleInit(): void {
    this.hooks.register(this);
  }

  async subscriptionCreated(tx: EntityManager, subscription: Subscription): Promise<void> {
    await this.rollups.markDirty(tx, subscription.id);
  }

  async changeApplied(tx: EntityManager, change: SubscriptionChange, subscription: Subscription): Promise<void> {
    if (change.kind === 'plan' || change.kind === 'cancel') await this.rollups.markDirty(tx, subscription.id, { from: change.effectiveAt });
  }
}
