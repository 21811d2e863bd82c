import { Check, Entity, Index, ManyToOne, Property } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Subscription } from './subscription.entity';

/**
 * A one-off charge (3 h consulting × $150) recorded against a subscription and billed on the next
 * period invoice (SPEC §2): the first period invoice rated after it was recorded whose period ends
 * after `date`. Immutable once written; the invoice line that bills it points back at it
 * (`invoice_lines.source_type = 'on_demand_charge'`).
 */
@Entity({ tableName: 'on_demand_charges' })
@Index({ properties: ['subscriptionId', 'date'] })
@Check({ name: 'on_demand_charges_amounts_check', expression: 'quantity > 0 and unit_amount >= 0' })
export class OnDemandCharge extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  subscriptionId!: string;

  @Property({ type: 'text' })
  description!: string;

  /** Decimal string, > 0, at most 12 decimals. */
  @Property({ type: 'decimal', columnType: 'numeric' })
  quantity!: string;

  /** Decimal string in the subscription's currency, at most 12 decimals. */
  @Property({ type: 'decimal', columnType: 'numeric' })
  unitAmount!: string;

  /** When the service was delivered; the line's service period is that UTC day. */
  @Property({ type: 'timestamptz' })
  date!: Date;

  /** A `one_time` product of the catalog, when the charge is one. */
  @Property({ type: 'text', nullable: true })
  productKey?: string | null;
}
