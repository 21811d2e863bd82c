import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Subscription } from './entities/subscription.entity';
import type { SubscriptionChange } from './entities/subscription-change.entity';

/**
 * What other modules do inside a subscription write's transaction. Invoicing registers one (the
 * opening invoice when a subscription is created; the money effect of a change — proration lines,
 * `subscription.plan_changed` — when it takes effect), so dependencies keep pointing one way
 * (subscriptions knows nothing of invoices) while the money effect commits with the change.
 */
export interface SubscriptionLifecycleHook {
  /** After the subscription, its add-ons and its periods are written (same transaction). */
  subscriptionCreated?(tx: EntityManager, subscription: Subscription, now: Date): Promise<void>;
  /**
   * When a recorded change takes effect: at once for a change effective now or in the past, or when
   * `applyDueChanges` applies a scheduled one (same transaction as `applied_at`).
   */
  changeApplied?(tx: EntityManager, change: SubscriptionChange, subscription: Subscription, now: Date): Promise<void>;
}

@Injectable()
export class SubscriptionHooks {
  private readonly logger = new Logger('SubscriptionHooks');
  private readonly hooks: SubscriptionLifecycleHook[] = [];

  register(hook: SubscriptionLifecycleHook): void {
    if (!this.hooks.includes(hook)) this.hooks.push(hook);
  }

  async subscriptionCreated(tx: EntityManager, subscription: Subscription, now: Date): Promise<void> {
    for (const h of this.hooks) if (h.subscriptionCreated) await h.subscriptionCreated(tx, subscription, now);
  }

  async changeApplied(tx: EntityManager, change: SubscriptionChange, subscription: Subscription, now: Date): Promise<void> {
    for (const h of this.hooks) if (h.changeApplied) await h.changeApplied(tx, change, subscription, now);
    if (!this.hooks.length) this.logger.debug({ change: change.id }, 'no subscription hooks registered');
  }
}
