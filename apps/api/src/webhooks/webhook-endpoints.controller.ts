import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import {
  ApiRoute,
  Caller,
  MAX_SECRET_GRACE_HOURS,
  MAX_WEBHOOK_URL_LENGTH,
  pageSchema,
  paginationQuery,
  Roles,
  secretHint,
  toPage,
  WEBHOOK_SUBSCRIPTIONS,
  WebhookEndpointsService,
  webhookUrlProblem,
  ZBody,
  ZQuery,
  type Principal,
  type WebhookEndpoint,
} from '@closebook/platform';

const url = z
  .string()
  .max(MAX_WEBHOOK_URL_LENGTH)
  .superRefine((v, ctx) => {
    const problem = webhookUrlProblem(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const createBody = z
  .object({
    url,
    description: z.string().max(500).nullish(),
    event_types: z.array(z.enum(WEBHOOK_SUBSCRIPTIONS)).min(1).max(WEBHOOK_SUBSCRIPTIONS.length).optional(),
  })
  .strict();

const rotateBody = z.object({ expire_previous_in_hours: z.number().int().min(0).max(MAX_SECRET_GRACE_HOURS).optional() }).strict();

const listQuery = z.object({ ...paginationQuery, enabled: z.enum(['true', 'false']).optional() }).strict();

const endpointView = z.object({
  id: z.string(),
  url: z.string(),
  description: z.string().nullable(),
  event_types: z.array(z.string()),
  enabled: z.boolean(),
  secret_hint: z.string(),
  previous_secret_expires_at: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
const withSecret = endpointView.extend({ secret: z.string() });

const present = (e: WebhookEndpoint) => ({
  id: e.id,
  url: e.url,
  description: e.description ?? null,
  event_types: e.eventTypes,
  enabled: e.enabled,
  secret_hint: secretHint(e.secret),
  previous_secret_expires_at: e.previousSecret && e.previousSecretExpiresAt ? e.previousSecretExpiresAt.toISOString() : null,
  created_at: e.createdAt.toISOString(),
  updated_at: e.updatedAt.toISOString(),
});

@Controller('webhook-endpoints')
@Roles('admin')
export class WebhookEndpointsController {
  constructor(private readonly endpoints: WebhookEndpointsService, private readonly em: EntityManager) {}

  @Post()
  @ApiRoute({
    summary: 'Register a webhook endpoint (its signing secret is shown once, in this answer)',
    description: 'event_types: a list of event types, or ["*"] (the default) for all of them, including types added later.',
    tags: ['webhooks'],
    response: withSecret,
  })
  async create(@Caller() caller: Principal, @ZBody(createBody) body: z.infer<typeof createBody>) {
    const { endpoint, secret } = await this.em.transactional((tx) =>
      this.endpoints.create(tx, caller.organizationId, { url: body.url, description: body.description, eventTypes: body.event_types }),
    );
    return { ...present(endpoint), secret };
  }

  @Get()
  @Roles('finance')
  @ApiRoute({ summary: 'List webhook endpoints, newest first (secrets are never returned)', tags: ['webhooks'], response: pageSchema(endpointView) })
  async list(@Caller() caller: Principal, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    const rows = await this.endpoints.list(this.em, caller.organizationId, {
      limit: q.limit,
      cursor: q.cursor,
      enabled: q.enabled === undefined ? undefined : q.enabled === 'true',
    });
    return toPage(rows, q.limit, present);
  }

  @Get(':id')
  @Roles('finance')
  @ApiRoute({ summary: 'A webhook endpoint', tags: ['webhooks'], response: endpointView })
  async get(@Caller() caller: Principal, @Param('id') id: string) {
    return present(await this.endpoints.get(this.em, caller.organizationId, id));
  }

  @Post(':id/disable')
  @HttpCode(200)
  @ApiRoute({ summary: 'Disable a webhook endpoint: no new deliveries; pending ones fail and can be retried later', tags: ['webhooks'], response: endpointView })
  async disable(@Caller() caller: Principal, @Param('id') id: string) {
    return present(await this.em.transactional((tx) => this.endpoints.setEnabled(tx, caller.organizationId, id, false)));
  }

  @Post(':id/enable')
  @HttpCode(200)
  @ApiRoute({ summary: 'Enable a webhook endpoint again (events emitted while it was disabled are not sent)', tags: ['webhooks'], response: endpointView })
  async enable(@Caller() caller: Principal, @Param('id') id: string) {
    return present(await this.em.transactional((tx) => this.endpoints.setEnabled(tx, caller.organizationId, id, true)));
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @ApiRoute({
    summary: 'Replace the signing secret (the new one is shown once, in this answer)',
    description: 'With expire_previous_in_hours > 0 the old secret keeps signing too (a second v1= in Closebook-Signature) until then; 0 (the default) retires it at once.',
    tags: ['webhooks'],
    response: withSecret,
  })
  async rotateSecret(@Caller() caller: Principal, @Param('id') id: string, @ZBody(rotateBody) body: z.infer<typeof rotateBody>) {
    const { endpoint, secret } = await this.em.transactional((tx) =>
      this.endpoints.rotateSecret(tx, caller.organizationId, id, body.expire_previous_in_hours ?? 0),
    );
    return { ...present(endpoint), secret };
  }
}
