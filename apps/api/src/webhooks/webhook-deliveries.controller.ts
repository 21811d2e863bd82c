import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import {
  ApiRoute,
  Caller,
  pageSchema,
  paginationQuery,
  Roles,
  toPage,
  WEBHOOK_DELIVERY_STATUSES,
  WEBHOOK_EVENT_TYPES,
  WebhookDeliveriesService,
  ZQuery,
  type Principal,
  type WebhookDelivery,
  type WebhookDeliveryAttempt,
} from '@closebook/platform';

const listQuery = z
  .object({
    ...paginationQuery,
    endpoint: z.uuid().optional(),
    status: z.enum(WEBHOOK_DELIVERY_STATUSES).optional(),
    type: z.enum(WEBHOOK_EVENT_TYPES).optional(),
    event_id: z.uuid().optional(),
  })
  .strict();

const deliveryView = z.object({
  id: z.string(),
  endpoint_id: z.string(),
  event_id: z.string(),
  event_type: z.string(),
  status: z.enum(WEBHOOK_DELIVERY_STATUSES),
  attempt_count: z.number(),
  manual_retries: z.number(),
  last_attempt_at: z.string().nullable(),
  last_status_code: z.number().nullable(),
  last_error: z.string().nullable(),
  next_attempt_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  created_at: z.string(),
});

const attemptView = z.object({
  attempt_number: z.number(),
  attempted_at: z.string(),
  succeeded: z.boolean(),
  status_code: z.number().nullable(),
  duration_ms: z.number(),
  error: z.string().nullable(),
  response_body: z.string().nullable(),
  response_body_truncated: z.boolean(),
});

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

const present = (d: WebhookDelivery) => ({
  id: d.id,
  endpoint_id: d.endpoint.id,
  event_id: d.message.id,
  event_type: d.eventType,
  status: d.status,
  attempt_count: d.attemptCount,
  manual_retries: d.manualRetries,
  last_attempt_at: iso(d.lastAttemptAt),
  last_status_code: d.lastStatusCode ?? null,
  last_error: d.lastError ?? null,
  next_attempt_at: iso(d.nextAttemptAt),
  completed_at: iso(d.completedAt),
  created_at: d.createdAt.toISOString(),
});

const presentAttempt = (a: WebhookDeliveryAttempt) => ({
  attempt_number: a.attemptNumber,
  attempted_at: a.createdAt.toISOString(),
  succeeded: a.succeeded,
  status_code: a.statusCode ?? null,
  duration_ms: a.durationMs,
  error: a.error ?? null,
  response_body: a.responseBody ?? null,
  response_body_truncated: a.responseBodyTruncated,
});

@Controller('webhook-deliveries')
@Roles('finance')
export class WebhookDeliveriesController {
  constructor(private readonly deliveries: WebhookDeliveriesService, private readonly em: EntityManager) {}

  @Get()
  @ApiRoute({
    summary: 'The webhook delivery log, newest first',
    description: 'Filters: endpoint (id), status (pending, succeeded, failed), type (event type), event_id (the event\'s id, as sent in Closebook-Event-Id).',
    tags: ['webhooks'],
    response: pageSchema(deliveryView),
  })
  async list(@Caller() caller: Principal, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    const rows = await this.deliveries.list(this.em, caller.organizationId, {
      limit: q.limit,
      cursor: q.cursor,
      endpointId: q.endpoint,
      status: q.status,
      type: q.type,
      eventId: q.event_id,
    });
    return toPage(rows, q.limit, present);
  }

  @Get(':id')
  @ApiRoute({ summary: 'A webhook delivery with every attempt (status code, duration, error, start of the answer)', tags: ['webhooks'], response: deliveryView.extend({ attempts: z.array(attemptView) }) })
  async get(@Caller() caller: Principal, @Param('id') id: string) {
    const { delivery, attempts } = await this.deliveries.get(this.em, caller.organizationId, id);
    return { ...present(delivery), attempts: attempts.map(presentAttempt) };
  }

  @Post(':id/retry')
  @HttpCode(202)
  @ApiRoute({
    summary: 'Retry a failed delivery: a new schedule of attempts, the first at once',
    tags: ['webhooks'],
    response: deliveryView,
    errors: [422],
  })
  async retry(@Caller() caller: Principal, @Param('id') id: string) {
    const delivery = await this.em.transactional((tx) => this.deliveries.retry(tx, caller.organizationId, id));
    await this.deliveries.enqueueRetry(delivery);
    return present(delivery);
  }
}
