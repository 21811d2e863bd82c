import { ArrayType, Check, Entity, Index, Property, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '../database/base.entity';
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from '../outbox/outbox-message.entity';

/** Subscribing to `*` means every event type, including types added after the endpoint was made. */
export const WEBHOOK_ALL_EVENTS = '*';
export type WebhookSubscription = WebhookEventType | typeof WEBHOOK_ALL_EVENTS;
export const WEBHOOK_SUBSCRIPTIONS = [WEBHOOK_ALL_EVENTS, ...WEBHOOK_EVENT_TYPES] as const;

/**
 * A URL of an organization's that receives signed event notifications.
 *
 * The signing secret is kept in clear: HMAC needs the key itself to sign, so a one-way hash (as for
 * API keys) cannot work. It is returned once (at creation and at rotation), never by a read, and
 * during a rotation's grace period the previous secret signs too (two `v1=` signatures).
 */
@Entity({ tableName: 'webhook_endpoints' })
@Index({ properties: ['organizationId', 'createdAt'] })
@Check({ name: 'webhook_endpoints_event_types_check', expression: 'cardinality(event_types) > 0' })
export class WebhookEndpoint extends TenantEntity {
  @Property({ type: 'text' })
  url!: string;

  @Property({ type: 'text', nullable: true })
  description?: string | null;

  /** The event types delivered here, or `['*']` for all of them. */
  @Property({ type: ArrayType })
  eventTypes!: WebhookSubscription[];

  @Property({ type: 'text' })
  secret!: string;

  /** The secret before the last rotation, still signing until `previousSecretExpiresAt`. */
  @Property({ type: 'text', nullable: true })
  previousSecret?: string | null;

  @Property({ type: 'timestamptz', nullable: true })
  previousSecretExpiresAt?: Date | null;

  @Property({ type: 'boolean', default: true })
  enabled: Opt<boolean> = true;

  @Property({ type: 'timestamptz', defaultRaw: 'now()', onUpdate: () => new Date() })
  updatedAt: Opt<Date> = new Date();
}
