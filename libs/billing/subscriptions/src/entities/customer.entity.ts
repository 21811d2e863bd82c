import { Check, Entity, Property, Unique, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

/** A billed customer. `external_id` is the platform's own id for it (what usage events carry). */
@Entity({ tableName: 'customers' })
@Unique({ properties: ['organizationId', 'externalId'] })
@Check({ name: 'customers_tax_rate_check', expression: 'tax_rate >= 0 and tax_rate <= 1' })
export class Customer extends TenantEntity {
  @Property({ type: 'text' })
  externalId!: string;

  @Property({ type: 'text' })
  name!: string;

  @Property({ type: 'text', nullable: true })
  email?: string | null;

  /** ISO 4217; every subscription of the customer bills in it. */
  @Property({ type: 'text' })
  currency!: string;

  /** A fraction 0..1 (0.2 = 20%). */
  @Property({ type: 'decimal', columnType: 'numeric', default: 0 })
  taxRate: Opt<string> = '0';
}
