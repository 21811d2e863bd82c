import { Injectable } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditService } from '../audit/audit.service';
import { NotFoundError, UnprocessableError } from '../errors/domain-error';
import { afterCursor, decodeCursor } from '../http/pagination';
import type { WebhookEventType } from '../outbox/outbox-message.entity';
import { WebhookDelivery, WebhookDeliveryAttempt, type WebhookDeliveryStatus } from './webhook-delivery.entity';
import { WebhookDeliveryQueue } from './webhook-delivery-queue';
import { WebhookEndpoint } from './webhook-endpoint.entity';
import { isUuid } from './webhook-endpoints.service';

export interface ListWebhookDeliveries {
  limit: number;
  cursor?: string;
  endpointId?: string;
  status?: WebhookDeliveryStatus;
  type?: WebhookEventType;
  /** The outbox message (event) id. */
  eventId?: string;
}

export interface WebhookDeliveryWithAttempts {
  delivery: WebhookDelivery;
  attempts: WebhookDeliveryAttempt[];
}

/** The delivery log as the API shows it, and an operator's retry of a failed delivery. */
@Injectable()
export class WebhookDeliveriesService {
  constructor(private readonly audit: AuditService, private readonly queue: WebhookDeliveryQueue) {}

  async list(em: EntityManager, organizationId: string, q: ListWebhookDeliveries): Promise<WebhookDelivery[]> {
    if (q.endpointId && !(isUuid(q.endpointId) && (await em.count(WebhookEndpoint, { id: q.endpointId, organizationId })))) {
      throw new NotFoundError('webhook endpoint', q.endpointId, 'endpoint');
    }
    return em.find(
      WebhookDelivery,
      {
        organizationId,
        ...(q.endpointId ? { endpoint: q.endpointId } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(q.type ? { eventType: q.type } : {}),
        ...(q.eventId ? { message: q.eventId } : {}),
        ...afterCursor(decodeCursor(q.cursor)),
      },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 },
    );
  }

  /** Another organization's delivery reads as not found. */
  async get(em: EntityManager, organizationId: string, id: string): Promise<WebhookDeliveryWithAttempts> {
    const delivery = isUuid(id) ? await em.findOne(WebhookDelivery, { id, organizationId }) : null;
    if (!delivery) throw new NotFoundError('webhook delivery', id);
    const attempts = await em.find(WebhookDeliveryAttempt, { delivery: delivery.id, organizationId }, { orderBy: { attemptNumber: 'asc' } });
    return { delivery, attempts };
  }

  /**
   * Puts a failed delivery back to pending with a fresh schedule of attempts (the first one at once).
   * Only a failed delivery may be retried, and only to an enabled endpoint. Run inside a transaction;
   * call `enqueueRetry` with the result once it has committed.
   */
  async retry(em: EntityManager, organizationId: string, id: string): Promise<WebhookDelivery> {
    const delivery = isUuid(id) ? await em.findOne(WebhookDelivery, { id, organizationId }, { lockMode: LockMode.PESSIMISTIC_WRITE }) : null;
    if (!delivery) throw new NotFoundError('webhook delivery', id);
    if (delivery.status !== 'failed') {
      throw new UnprocessableError('delivery_not_failed', `Only a failed delivery can be retried; this one is ${delivery.status}`, 'status');
    }
    const endpoint = await em.findOneOrFail(WebhookEndpoint, { id: delivery.endpoint.id, organizationId });
    if (!endpoint.enabled) {
      throw new UnprocessableError('endpoint_disabled', `Webhook endpoint ${endpoint.id} is disabled; enable it before retrying`, 'endpoint');
    }
    delivery.status = 'pending';
    delivery.manualRetries += 1;
    delivery.nextAttemptAt = new Date();
    delivery.completedAt = null;
    this.audit.record(em, {
      organizationId,
      action: 'webhook_delivery.retried',
      resourceType: 'webhook_delivery',
      resourceId: delivery.id,
      data: { retry: delivery.manualRetries, attempts_so_far: delivery.attemptCount },
    });
    await em.flush();
    return delivery;
  }

  async enqueueRetry(delivery: WebhookDelivery): Promise<void> {
    await this.queue.enqueue([{ id: delivery.id, manualRetries: delivery.manualRetries }]);
  }
}
