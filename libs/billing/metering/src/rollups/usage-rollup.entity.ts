import { BigIntType, Entity, Enum, Index, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

export const METER_AGGREGATIONS = ['count', 'sum', 'max', 'unique_count', 'latest'] as const;
export type MeterAggregation = (typeof METER_AGGREGATIONS)[number];

/**
 * The aggregate of one meter (and price key) for one subscription and one billing period, written
 * only by set-based SQL (RollupsService). `eventCount` and `digest` describe the events it covers,
 * so reconciliation can recompute it from raw events and compare. The id is stable across
 * recomputes (upsert on the natural key), so invoice lines can point at it.
 */
@Entity({ tableName: 'usage_rollups' })
@Unique({ name: 'usage_rollups_natural_key_unique', properties: ['subscriptionId', 'periodStart', 'productId', 'priceKey'] })
@Index({ properties: ['organizationId', 'periodStart'] })
export class UsageRollup extends TenantEntity {
  @Property({ type: 'uuid' })
  subscriptionId!: string;

  @Property({ type: 'timestamptz' })
  periodStart!: Date;

  @Property({ type: 'timestamptz' })
  periodEnd!: Date;

  @Property({ type: 'uuid' })
  productId!: string;

  @Property({ type: 'text' })
  productKey!: string;

  /** The value of the product's price_key_label property, or '' when the product is unkeyed. */
  @Property({ type: 'text' })
  priceKey!: string;

  @Enum({ items: [...METER_AGGREGATIONS] })
  aggregation!: MeterAggregation;

  /** Events covered (bigint, read as a string). */
  @Property({ type: new BigIntType('string') })
  eventCount!: string;

  /** Exact decimal aggregate (numeric, read as a string). */
  @Property({ type: 'decimal', columnType: 'numeric' })
  aggregate!: string;

  /** bit_xor of the first 64 bits of md5(event_id) over the covered events (see digest.ts). */
  @Property({ type: new BigIntType('string') })
  digest!: string;

  @Property({ type: 'timestamptz' })
  computedAt!: Date;
}
