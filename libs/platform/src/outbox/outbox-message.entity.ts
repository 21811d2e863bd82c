import { Entity, Enum, Index, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '../database/base.entity';

export const WEBHOOK_EVENT_TYPES = [
  'subscription.plan_changed',
  'subscription.converted',
  'allowance.rolled_over',
  'allowance.threshold_reached',
  'invoice.finalized',
  'credit_note.created',
  'exception.opened',
  'exception.escalated',
  'exception.assigned',
  'exception.resolved',
  'exception.waived',
  'exception.reopened',
  'period.closed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/**
 * Transactional outbox: written in the same transaction as the change it announces; a dispatcher
 * job turns each row into webhook deliveries. `dedupeKey` makes "once per threshold per period"
 * style events a database guarantee.
 */
@Entity({ tableName: 'outbox_messages' })
@Index({ properties: ['dispatchedAt', 'createdAt'] })
@Unique({ properties: ['organizationId', 'dedupeKey'] })
export class OutboxMessage extends TenantEntity {
  @Enum({ items: [...WEBHOOK_EVENT_TYPES] })
  type!: WebhookEventType;

  @Property({ type: 'jsonb' })
  payload!: Record<string, unknown>;

  @Property({ type: 'text', nullable: true })
  dedupeKey?: string | null;

  @Property({ type: 'timestamptz', nullable: true })
  dispatchedAt?: Date | null;
}
