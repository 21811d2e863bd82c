import { Entity, Enum, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import type { KeyedPrice, PriceModel } from '@closebook/rating';
import { PRODUCT_KINDS, Product, type ProductKind } from './product.entity';
import { PlanVersion } from './plan-version.entity';

export const ALLOWANCE_BASES = ['fixed', 'per_seat'] as const;
export const OVERAGE_MODES = ['bill', 'block'] as const;

/**
 * A product inside a plan version with its terms, as columns (for SQL readers such as metering)
 * mirroring the version's document. Defaults are resolved when the version is written
 * (rollover_enabled from the plan, expiry 1, overage bill, basis fixed); rollover_cap null means
 * "one allowance". Keyed products carry their allowances inside keyed_prices.
 */
@Entity({ tableName: 'plan_version_products' })
@Unique({ properties: ['planVersionId', 'productId'] })
export class PlanVersionProduct extends TenantEntity {
  @ManyToOne({ entity: () => PlanVersion, fieldName: 'plan_version_id', mapToPk: true, deleteRule: 'cascade', updateRule: 'restrict' })
  planVersionId!: string;

  @ManyToOne({ entity: () => Product, fieldName: 'product_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  productId!: string;

  @Property({ type: 'text' })
  productKey!: string;

  @Enum({ items: [...PRODUCT_KINDS] })
  kind!: ProductKind;

  /** Order of the product in the version (0-based), as in the document. */
  @Property({ type: 'integer' })
  position!: number;

  @Property({ type: 'decimal', columnType: 'numeric', nullable: true })
  allowance?: string | null;

  @Enum({ items: [...ALLOWANCE_BASES], nullable: true })
  allowanceBasis?: (typeof ALLOWANCE_BASES)[number] | null;

  @Property({ type: 'boolean', nullable: true })
  rolloverEnabled?: boolean | null;

  @Property({ type: 'decimal', columnType: 'numeric', nullable: true })
  rolloverCap?: string | null;

  @Property({ type: 'integer', nullable: true })
  rolloverExpiryPeriods?: number | null;

  @Enum({ items: [...OVERAGE_MODES], nullable: true })
  overage?: (typeof OVERAGE_MODES)[number] | null;

  @Property({ type: 'integer', nullable: true })
  includedSeats?: number | null;

  @Property({ type: 'jsonb', nullable: true })
  price?: PriceModel | null;

  @Property({ type: 'jsonb', nullable: true })
  keyedPrices?: KeyedPrice[] | null;
}
