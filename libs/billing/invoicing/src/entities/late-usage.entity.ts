import { BigIntType, Entity, Enum, Index, ManyToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Subscription } from '@closebook/subscriptions';
import { UsageRollup } from '@closebook/metering';
import type { Step } from '@closebook/rating';
import { Invoice } from './invoice.entity';

export const LATE_USAGE_STATUSES = ['open', 'billed', 'waived'] as const;
export type LateUsageStatus = (typeof LATE_USAGE_STATUSES)[number];

/**
 * Usage that reached a rollup after the period's invoice was finalized (SPEC §3): never billed
 * silently. Each row is one observed change of one rollup (keyed by its count and digest, so
 * observing the same state twice records it once): the quantity delta since the previous
 * observation (or since rating) and the amount it would have billed — the period re-rated with the
 * invoice's own rating input and the new quantity, minus the same at the previous quantity. The
 * close process turns open rows into `late_usage` exceptions and resolves them (billed as an
 * adjustment on a later invoice, or waived).
 */
@Entity({ tableName: 'late_usage' })
@Unique({ properties: ['invoiceId', 'productKey', 'priceKey', 'eventCount', 'digest'] })
@Index({ properties: ['organizationId', 'status', 'periodStart'] })
export class LateUsage extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  subscriptionId!: string;

  @Property({ type: 'uuid' })
  customerId!: string;

  /** The finalized period invoice the usage belongs to (never changed by it). */
  @ManyToOne({ entity: () => Invoice, fieldName: 'invoice_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  invoiceId!: string;

  @Property({ type: 'timestamptz' })
  periodStart!: Date;

  @Property({ type: 'timestamptz' })
  periodEnd!: Date;

  @Property({ type: 'text' })
  productKey!: string;

  /** As in usage_rollups: '' when the product is unkeyed. */
  @Property({ type: 'text' })
  priceKey!: string;

  @ManyToOne({ entity: () => UsageRollup, fieldName: 'rollup_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  rollupId!: string;

  /** Quantity the invoice billed (its rating snapshot). */
  @Property({ type: 'decimal', columnType: 'numeric' })
  billedQuantity!: string;

  /** Quantity at the previous observation (billed_quantity for the first one). */
  @Property({ type: 'decimal', columnType: 'numeric' })
  previousQuantity!: string;

  /** Quantity now (the rollup's aggregate). */
  @Property({ type: 'decimal', columnType: 'numeric' })
  quantity!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  quantityDelta!: string;

  /** Rounded amount it would have billed (current − previous usage lines of this dimension); may be 0 (within the allowance). */
  @Property({ type: 'decimal', columnType: 'numeric' })
  amount!: string;

  @Property({ type: 'text' })
  currency!: string;

  /** The rollup at detection. */
  @Property({ type: new BigIntType('string') })
  eventCount!: string;

  @Property({ type: new BigIntType('string') })
  digest!: string;

  /** The re-rated usage lines' steps (current, then previous), replayable with replayLine. */
  @Property({ type: 'jsonb' })
  steps!: {
    current: { line_key: string; amount: string; steps: Step[] }[];
    previous: { line_key: string; amount: string; steps: Step[] }[];
    /** When the period could not be re-rated (the amount is then 0 and the exception says why). */
    error?: { code: string; message: string };
  };

  @Enum({ items: [...LATE_USAGE_STATUSES], default: 'open' })
  status: Opt<LateUsageStatus> = 'open';
}
