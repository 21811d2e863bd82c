import { Injectable } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import { NotFoundError, ValidationError } from '../errors/domain-error';
import { afterCursor, decodeCursor } from '../http/pagination';
import { WEBHOOK_EVENT_TYPES } from '../outbox/outbox-message.entity';
import { WEBHOOK_ALL_EVENTS, WebhookEndpoint, type WebhookSubscription } from './webhook-endpoint.entity';
import { generateWebhookSecret } from './webhook-signature';

export const MAX_WEBHOOK_URL_LENGTH = 2048;
/** The longest grace a rotation may give the previous secret. */
export const MAX_SECRET_GRACE_HOURS = 7 * 24;

export { isUuid } from '../validation/uuid';
import { isUuid } from '../validation/uuid';

/** Why `url` cannot receive webhooks, or null when it can: absolute http(s), no credentials in it. */
export function webhookUrlProblem(url: string): string | null {
  if (url.length > MAX_WEBHOOK_URL_LENGTH) return `must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'must be an absolute http:// or https:// URL';
  if (!parsed.hostname) return 'must name a host';
  if (parsed.username || parsed.password) return 'must not carry credentials (user:password@); authenticate the signature instead';
  return null;
}

/** `['*']` when `*` is present, else the distinct types in registry order; refuses unknown types. */
export function normalizeEventTypes(types: readonly string[] | undefined): WebhookSubscription[] {
  if (!types || types.length === 0 || types.includes(WEBHOOK_ALL_EVENTS)) {
    if (types && types.length === 0) throw new ValidationError('invalid_value', 'event_types must name at least one event type, or "*"', 'event_types');
    return [WEBHOOK_ALL_EVENTS];
  }
  const unknown = types.find((t) => !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(t));
  if (unknown) throw new ValidationError('invalid_value', `event_types: unknown event type "${unknown}"`, 'event_types');
  return WEBHOOK_EVENT_TYPES.filter((t) => types.includes(t));
}

export interface CreateWebhookEndpoint {
  url: string;
  description?: string | null;
  eventTypes?: readonly string[];
}

export interface WebhookEndpointWithSecret {
  endpoint: WebhookEndpoint;
  /** Shown once, in the answer that created or rotated it. */
  secret: string;
}

export interface ListWebhookEndpoints {
  limit: number;
  cursor?: string;
  enabled?: boolean;
}

@Injectable()
export class WebhookEndpointsService {
  constructor(private readonly audit: AuditService) {}

  async create(em: EntityManager, organizationId: string, input: CreateWebhookEndpoint): Promise<WebhookEndpointWithSecret> {
    const problem = webhookUrlProblem(input.url);
    if (problem) throw new ValidationError('invalid_value', `url ${problem}`, 'url');
    const secret = generateWebhookSecret();
    const endpoint = em.create(WebhookEndpoint, {
      organizationId,
      url: input.url,
      description: input.description ?? null,
      eventTypes: normalizeEventTypes(input.eventTypes),
      secret,
    });
    this.audit.record(em, {
      organizationId,
      action: 'webhook_endpoint.created',
      resourceType: 'webhook_endpoint',
      resourceId: endpoint.id,
      data: { url: endpoint.url, event_types: endpoint.eventTypes },
    });
    await em.flush();
    return { endpoint, secret };
  }

  async list(em: EntityManager, organizationId: string, q: ListWebhookEndpoints): Promise<WebhookEndpoint[]> {
    return em.find(
      WebhookEndpoint,
      { organizationId, ...(q.enabled === undefined ? {} : { enabled: q.enabled }), ...afterCursor(decodeCursor(q.cursor)) },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 },
    );
  }

  /** Another organization's endpoint reads as not found. `lock` (inside a transaction) takes a row lock. */
  async get(em: EntityManager, organizationId: string, id: string, lock = false): Promise<WebhookEndpoint> {
    const endpoint = isUuid(id)
      ? await em.findOne(WebhookEndpoint, { id, organizationId }, lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {})
      : null;
    if (!endpoint) throw new NotFoundError('webhook endpoint', id);
    return endpoint;
  }

  /** Disabling stops new deliveries to the endpoint (pending ones fail at their next attempt). Idempotent. */
  async setEnabled(em: EntityManager, organizationId: string, id: string, enabled: boolean): Promise<WebhookEndpoint> {
    const endpoint = await this.get(em, organizationId, id, true);
    if (endpoint.enabled !== enabled) {
      endpoint.enabled = enabled;
      this.audit.record(em, {
        organizationId,
        action: enabled ? 'webhook_endpoint.enabled' : 'webhook_endpoint.disabled',
        resourceType: 'webhook_endpoint',
        resourceId: endpoint.id,
      });
      await em.flush();
    }
    return endpoint;
  }

  /**
   * A new secret signs from now on. With `graceHours` > 0 the old one keeps signing too (a second
   * `v1=`) until then, so receivers can switch without missing an event; 0 retires it at once.
   */
  async rotateSecret(em: EntityManager, organizationId: string, id: string, graceHours: number): Promise<WebhookEndpointWithSecret> {
    if (!Number.isInteger(graceHours) || graceHours < 0 || graceHours > MAX_SECRET_GRACE_HOURS) {
      throw new ValidationError('invalid_value', `expire_previous_in_hours must be a whole number from 0 to ${MAX_SECRET_GRACE_HOURS}`, 'expire_previous_in_hours');
    }
    const endpoint = await this.get(em, organizationId, id, true);
    const secret = generateWebhookSecret();
    endpoint.previousSecret = graceHours > 0 ? endpoint.secret : null;
    endpoint.previousSecretExpiresAt = graceHours > 0 ? new Date(Date.now() + graceHours * 3600_000) : null;
    endpoint.secret = secret;
    this.audit.record(em, {
      organizationId,
      action: 'webhook_endpoint.secret_rotated',
      resourceType: 'webhook_endpoint',
      resourceId: endpoint.id,
      data: { previous_secret_expires_at: endpoint.previousSecretExpiresAt?.toISOString() ?? null },
    });
    await em.flush();
    return { endpoint, secret };
  }
}
