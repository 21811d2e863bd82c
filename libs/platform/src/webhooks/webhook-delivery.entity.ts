import { Entity, Enum, Index, ManyToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '../database/base.entity';
import { OutboxMessage, type WebhookEventType } from '../outbox/outbox-message.entity';
import { WebhookEndpoint } from './webhook-endpoint.entity';

export const WEBHOOK_DELIVERY_STATUSES = ['pending', 'succeeded', 'failed'] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

/**
 * One outbox message on its way to one endpoint. Unique on (message, endpoint): a dispatch that runs
 * twice, or on two workers at once, makes one delivery. `lockedUntil` is the lease of the worker
 * sending it, so two jobs for one delivery never post at the same time.
 */
@Entity({ tableName: 'webhook_deliveries' })
@Unique({ properties: ['message', 'endpoint'] })
@Index({ properties: ['organizationId', 'createdAt'] })
@Index({ properties: ['endpoint', 'createdAt'] })
@Index({ properties: ['status', 'nextAttemptAt'] })
export class WebhookDelivery extends TenantEntity {
  @ManyToOne(() => OutboxMessage)
  message!: OutboxMessage;

  @ManyToOne(() => WebhookEndpoint)
  endpoint!: WebhookEndpoint;

  /** The message's type, copied so the delivery log filters by it without a join. */
  @Property({ type: 'text' })
  eventType!: WebhookEventType;

  @Enum({ items: [...WEBHOOK_DELIVERY_STATUSES], default: 'pending' })
  status: Opt<WebhookDeliveryStatus> = 'pending';

  @Property({ type: 'integer', default: 0 })
  attemptCount: Opt<number> = 0;

  /** How many times an operator asked for a retry of this failed delivery (each one is a new job). */
  @Property({ type: 'integer', default: 0 })
  manualRetries: Opt<number> = 0;

  /** When the next attempt is due (null once the delivery has succeeded or failed). */
  @Property({ type: 'timestamptz', nullable: true })
  nextAttemptAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  lastAttemptAt?: Date | null;

  @Property({ type: 'integer', nullable: true })
  lastStatusCode?: number | null;

  @Property({ type: 'text', nullable: true })
  lastError?: string | null;

  @Property({ type: 'timestamptz', nullable: true })
  completedAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  lockedUntil?: Date | null;
}

/** The delivery log: one row per HTTP attempt, append-only (a trigger refuses updates and deletes). */
@Entity({ tableName: 'webhook_delivery_attempts' })
@Unique({ properties: ['delivery', 'attemptNumber'] })
export class WebhookDeliveryAttempt extends TenantEntity {
  @ManyToOne(() => WebhookDelivery)
  delivery!: WebhookDelivery;

  @Property({ type: 'integer' })
  attemptNumber!: number;

  @Property({ type: 'boolean' })
  succeeded!: boolean;

  /** The receiver's HTTP status; null when no answer came (network error, timeout). */
  @Property({ type: 'integer', nullable: true })
  statusCode?: number | null;

  @Property({ type: 'integer' })
  durationMs!: number;

  @Property({ type: 'text', nullable: true })
  error?: string | null;

  /** The start of the receiver's answer, cut at the configured limit. */
  @Property({ type: 'text', nullable: true })
  responseBody?: string | null;

  @Property({ type: 'boolean', default: false })
  responseBodyTruncated: Opt<boolean> = false;
}

export const WEBHOOK_ENTITIES = [WebhookEndpoint, WebhookDelivery, WebhookDeliveryAttempt];
