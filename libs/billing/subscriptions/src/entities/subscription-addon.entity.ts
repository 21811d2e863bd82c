import { Check, Entity, Index, ManyToOne, Property } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Product } from '@closebook/catalog';
import { Subscription } from './subscription.entity';

/**
 * An add-on quantity over [effective_from, effective_to). A change closes the open range and opens
 * a new one, so the rows are the add-on's whole history and schedule; ranges of one add-on never
 * overlap (an exclusion constraint).
 */
@Entity({ tableName: 'subscription_addons' })
@Index({ properties: ['subscriptionId', 'productId', 'effectiveFrom'] })
@Index({
  name: 'subscription_addons_no_overlap',
  expression:
    'alter table "subscription_addons" add constraint "subscription_addons_no_overlap" exclude using gist ("subscription_id" with =, "product_id" with =, tstzrange("effective_from", "effective_to") with &&)',
})
@Check({ name: 'subscription_addons_quantity_check', expression: 'quantity > 0' })
@Check({ name: 'subscription_addons_range_check', expression: 'effective_to is null or effective_to > effective_from' })
export class SubscriptionAddon extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  subscriptionId!: string;

  @ManyToOne({ entity: () => Product, fieldName: 'product_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  productId!: string;

  @Property({ type: 'text' })
  productKey!: string;

  @Property({ type: 'integer' })
  quantity!: number;

  @Property({ type: 'timestamptz' })
  effectiveFrom!: Date;

  @Property({ type: 'timestamptz', nullable: true })
  effectiveTo?: Date | null;
}
