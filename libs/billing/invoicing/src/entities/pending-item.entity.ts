import { Entity, Enum, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Subscription } from '@closebook/subscriptions';
import type { AdjustmentInput, CreditInput, RatedLine } from '@closebook/rating';

export const PENDING_ITEM_KINDS = ['deferred_line', 'adjustment', 'credit'] as const;
export type PendingItemKind = (typeof PENDING_ITEM_KINDS)[number];

/**
 * Something waiting for the next period invoice of a subscription: a proration line deferred by a
 * transition (`prorated_next_invoice`, a downgrade's difference credit), an adjustment (late usage
 * billed later, with its original service period) or a credit. The first period invoice rated
 * whose period ends after `billable_from` takes it; the line that bills it points back here
 * (`invoice_lines.source_type = 'pending_item'`), so it is billed exactly once.
 */
@Entity({ tableName: 'invoice_pending_items' })
@Index({ properties: ['subscriptionId', 'billableFrom'] })
@Index({ properties: ['sourceType', 'sourceId'] })
// Late usage is billed once; a subscription change may defer several items under one source id.
@Unique({
  name: 'invoice_pending_items_late_usage_unique',
  expression: `create unique index "invoice_pending_items_late_usage_unique" on "invoice_pending_items" ("source_id") where "source_type" = 'late_usage'`,
})
export class PendingItem extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  subscriptionId!: string;

  @Enum({ items: [...PENDING_ITEM_KINDS] })
  kind!: PendingItemKind;

  /** deferred_line: a RatedLine; adjustment: an AdjustmentInput; credit: a CreditInput. */
  @Property({ type: 'jsonb' })
  payload!: RatedLine | AdjustmentInput | CreditInput;

  @Property({ type: 'timestamptz' })
  billableFrom!: Date;

  /** What produced it: `subscription_change`, `late_usage`, … */
  @Property({ type: 'text' })
  sourceType!: string;

  @Property({ type: 'text' })
  sourceId!: string;

  @Property({ type: 'text' })
  description!: string;
}
