import { Entity, Enum, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { LINE_TYPES, type LineMeta, type LineType, type PriceModel, type ProrationInfo, type Step, type TierBreakdown } from '@closebook/rating';
import { Invoice } from './invoice.entity';

export const LINE_SOURCE_TYPES = ['on_demand_charge', 'pending_item', 'subscription_change'] as const;
export type LineSourceType = (typeof LINE_SOURCE_TYPES)[number];

/**
 * One line of an invoice, exactly as the rating core produced it (`RatedLine`): its service
 * period, quantity, unit amount or tier breakdown, exact and rounded amount, a customer-readable
 * description and the computation `steps` that `replayLine` recomputes. `source_*` points at what
 * the line bills when that is a record of its own (an on-demand charge, a deferred proration line,
 * the subscription change of a transition); usage lines point at their rollups in invoice_rollups.
 */
@Entity({ tableName: 'invoice_lines' })
@Unique({ properties: ['invoiceId', 'lineKey'] })
@Index({ properties: ['sourceType', 'sourceId'] })
export class InvoiceLine extends TenantEntity {
  @ManyToOne({ entity: () => Invoice, fieldName: 'invoice_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  invoiceId!: string;

  @Property({ type: 'integer' })
  position!: number;

  @Property({ type: 'text' })
  lineKey!: string;

  @Enum({ items: [...LINE_TYPES] })
  type!: LineType;

  @Property({ type: 'text', nullable: true })
  productKey?: string | null;

  @Property({ type: 'text', nullable: true })
  priceKey?: string | null;

  @Property({ type: 'timestamptz' })
  periodStart!: Date;

  @Property({ type: 'timestamptz' })
  periodEnd!: Date;

  @Property({ type: 'decimal', columnType: 'numeric' })
  quantity!: string;

  @Property({ type: 'decimal', columnType: 'numeric', nullable: true })
  unitAmount?: string | null;

  @Property({ type: 'jsonb', nullable: true })
  tiers?: TierBreakdown[] | null;

  @Property({ type: 'jsonb', nullable: true })
  price?: PriceModel | null;

  @Property({ type: 'decimal', columnType: 'numeric' })
  amountExact!: string;

  /** Rounded once, half-up, to the currency's minor unit. */
  @Property({ type: 'decimal', columnType: 'numeric' })
  amount!: string;

  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'text' })
  description!: string;

  @Property({ type: 'jsonb', nullable: true })
  proration?: ProrationInfo | null;

  @Property({ type: 'jsonb' })
  steps!: Step[];

  @Property({ type: 'jsonb' })
  meta!: LineMeta;

  @Enum({ items: [...LINE_SOURCE_TYPES], nullable: true })
  sourceType?: LineSourceType | null;

  @Property({ type: 'uuid', nullable: true })
  sourceId?: string | null;
}
