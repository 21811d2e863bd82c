import { Check, Entity, Enum, Index, ManyToOne, Property, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { PlanVersion } from '@closebook/catalog';
import { Customer } from './customer.entity';

export const SUBSCRIPTION_STATUSES = ['active', 'canceled'] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

/**
 * A customer's subscription to a pinned plan version. `seats` and `plan_version_id` are the state
 * in force now; their history is in subscription_changes. Service runs over [started_at, ends_at);
 * at most one subscription of a customer is in force at any instant (an exclusion constraint), so
 * "the subscription active at an event's timestamp" is always one row or none.
 */
@Entity({ tableName: 'subscriptions' })
@Index({ properties: ['organizationId', 'customerId'] })
@Index({
  name: 'subscriptions_no_overlap',
  expression:
    'alter table "subscriptions" add constraint "subscriptions_no_overlap" exclude using gist ("customer_id" with =, tstzrange("started_at", "ends_at") with &&)',
})
@Check({ name: 'subscriptions_billing_anchor_check', expression: 'billing_anchor >= 1 and billing_anchor <= 31' })
@Check({ name: 'subscriptions_seats_check', expression: 'seats >= 0' })
@Check({ name: 'subscriptions_ends_after_start_check', expression: 'ends_at is null or ends_at > started_at' })
export class Subscription extends TenantEntity {
  @ManyToOne({ entity: () => Customer, fieldName: 'customer_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  customerId!: string;

  @ManyToOne({ entity: () => PlanVersion, fieldName: 'plan_version_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  planVersionId!: string;

  @Enum({ items: [...SUBSCRIPTION_STATUSES], default: 'active' })
  status: Opt<SubscriptionStatus> = 'active';

  @Property({ type: 'timestamptz' })
  startedAt!: Date;

  /** End of service (exclusive); null = open-ended. */
  @Property({ type: 'timestamptz', nullable: true })
  endsAt?: Date | null;

  /** Day of the month (UTC) billing periods start on; 29–31 clamp to short months' last day. */
  @Property({ type: 'smallint', default: 1 })
  billingAnchor: Opt<number> = 1;

  @Property({ type: 'integer', default: 1 })
  seats: Opt<number> = 1;
}
