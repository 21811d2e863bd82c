import { BigIntType, Entity, Index, ManyToOne, Property } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { UsageRollup } from '@closebook/metering';
import { Invoice } from './invoice.entity';
import { InvoiceLine } from './invoice-line.entity';

/**
 * The rollups a period invoice was rated from, with their count, aggregate and digest at rating
 * time: one row per (usage line, rollup) for the lines they priced, and one row with no line for
 * each rollup that priced nothing (zero usage). Comparing these with the rollups now tells whether
 * events arrived late (a draft is re-rated; a finalized invoice gets late_usage records).
 */
@Entity({ tableName: 'invoice_rollups' })
@Index({ properties: ['invoiceId'] })
@Index({ properties: ['invoiceLineId'] })
export class InvoiceRollup extends TenantEntity {
  @ManyToOne({ entity: () => Invoice, fieldName: 'invoice_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  invoiceId!: string;

  @ManyToOne({ entity: () => InvoiceLine, fieldName: 'invoice_line_id', mapToPk: true, nullable: true, deleteRule: 'restrict', updateRule: 'restrict' })
  invoiceLineId?: string | null;

  @ManyToOne({ entity: () => UsageRollup, fieldName: 'rollup_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  rollupId!: string;

  @Property({ type: 'text' })
  productKey!: string;

  /** As in usage_rollups: '' when the product is unkeyed. */
  @Property({ type: 'text' })
  priceKey!: string;

  @Property({ type: new BigIntType('string') })
  eventCount!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  aggregate!: string;

  @Property({ type: new BigIntType('string') })
  digest!: string;
}
