import { Entity, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Subscription, SubscriptionChange } from '@closebook/subscriptions';

/**
 * A conversion (SPEC §2): a subscription left a plan whose flat fee is 0 for a paid one. Facts for
 * analytics: the cohort (the month the subscription started) and the days it took.
 */
@Entity({ tableName: 'subscription_conversions' })
@Unique({ properties: ['changeId'] })
export class SubscriptionConversion extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  subscriptionId!: string;

  @ManyToOne({ entity: () => SubscriptionChange, fieldName: 'change_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  changeId!: string;

  @Property({ type: 'uuid' })
  customerId!: string;

  @Property({ type: 'uuid' })
  fromPlanVersionId!: string;

  @Property({ type: 'uuid' })
  toPlanVersionId!: string;

  /** YYYY-MM of the subscription's start (UTC). */
  @Property({ type: 'text' })
  cohortMonth!: string;

  @Property({ type: 'timestamptz' })
  startedAt!: Date;

  @Property({ type: 'timestamptz' })
  convertedAt!: Date;

  /** Whole days from the start to the conversion. */
  @Property({ type: 'integer' })
  daysToConvert!: number;
}
