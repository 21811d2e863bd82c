import { Entity, Enum, Index, ManyToOne, Property } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Subscription } from './subscription.entity';

export const SUBSCRIPTION_CHANGE_KINDS = ['seats', 'addon', 'plan', 'cancel'] as const;
export type SubscriptionChangeKind = (typeof SUBSCRIPTION_CHANGE_KINDS)[number];

/**
 * A change of a subscription with the instant it takes effect (its money effect is rated from
 * these rows). `applied_at` is when the subscription's current state took it in: at once for a
 * change effective now or in the past, by the scheduler for a future one. A scheduled change may be
 * canceled before it takes effect (`canceled_at`); canceled changes are kept (history) and ignored.
 */
@Entity({ tableName: 'subscription_changes' })
@Index({ properties: ['subscriptionId', 'effectiveAt'] })
@Index({ properties: ['appliedAt', 'effectiveAt'] })
export class SubscriptionChange extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  subscriptionId!: string;

  @Enum({ items: [...SUBSCRIPTION_CHANGE_KINDS] })
  kind!: SubscriptionChangeKind;

  @Property({ type: 'timestamptz' })
  effectiveAt!: Date;

  @Property({ type: 'jsonb' })
  data!: Record<string, unknown>;

  @Property({ type: 'timestamptz', nullable: true })
  appliedAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  canceledAt?: Date | null;
}
