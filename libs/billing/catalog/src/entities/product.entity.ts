import { Entity, Enum, Index, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

export const PRODUCT_KINDS = ['recurring', 'metered', 'seat', 'addon', 'one_time'] as const;
export type ProductKind = (typeof PRODUCT_KINDS)[number];

export const METER_AGGREGATIONS = ['count', 'sum', 'max', 'unique_count', 'latest'] as const;
export type MeterAggregation = (typeof METER_AGGREGATIONS)[number];

/** Equality conditions on event properties; an event matches when every one holds. */
export type MeterFilter = Record<string, string | number | boolean>;

/**
 * A catalog product (SPEC §1). A metered product names its meter: the event it counts, how it
 * aggregates, the property it aggregates (sum, max, unique_count, latest) and an optional filter.
 * Products are immutable once created: plan versions copy what rating needs into their document.
 * The metering engine reads the meter columns with SQL; their names are a contract.
 */
@Entity({ tableName: 'products' })
@Unique({ properties: ['organizationId', 'key'] })
@Index({ properties: ['organizationId', 'meterEventName'] })
export class Product extends TenantEntity {
  @Property({ type: 'text' })
  key!: string;

  @Property({ type: 'text' })
  name!: string;

  @Enum({ items: [...PRODUCT_KINDS] })
  kind!: ProductKind;

  @Property({ type: 'text', nullable: true })
  meterEventName?: string | null;

  @Enum({ items: [...METER_AGGREGATIONS], nullable: true })
  meterAggregation?: MeterAggregation | null;

  @Property({ type: 'text', nullable: true })
  meterProperty?: string | null;

  @Property({ type: 'jsonb', nullable: true })
  meterFilter?: MeterFilter | null;

  /** The event property keyed prices price by (e.g. "environment"). */
  @Property({ type: 'text', nullable: true })
  priceKeyLabel?: string | null;

  /** Display unit: "calls", "GB", "build-minutes". */
  @Property({ type: 'text', nullable: true })
  unit?: string | null;
}
