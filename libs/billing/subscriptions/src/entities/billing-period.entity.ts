import { Check, Entity, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Subscription } from './subscription.entity';

/**
 * One billing period [period_start, period_end) of a subscription: UTC midnights from the rating
 * core's period functions and the subscription's billing anchor, the first one prorated when the
 * subscription started mid-cycle. Periods of a subscription never overlap (an exclusion
 * constraint) and are numbered 1, 2, … by `seq`. Metering attributes an event at ts to the row
 * with period_start <= ts < period_end of the subscription in force at ts.
 */
@Entity({ tableName: 'billing_periods' })
@Unique({ properties: ['subscriptionId', 'periodStart'] })
@Unique({ properties: ['subscriptionId', 'seq'] })
@Index({ properties: ['organizationId', 'periodStart'] })
@Index({
  name: 'billing_periods_no_overlap',
  expression:
    'alter table "billing_periods" add constraint "billing_periods_no_overlap" exclude using gist ("subscription_id" with =, tstzrange("period_start", "period_end") with &&)',
})
@Check({ name: 'billing_periods_bounds_check', expression: 'period_end > period_start and seq >= 1' })
export class BillingPeriod extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  subscriptionId!: string;

  @Property({ type: 'timestamptz' })
  periodStart!: Date;

  @Property({ type: 'timestamptz' })
  periodEnd!: Date;

  @Property({ type: 'integer' })
  seq!: number;
}
