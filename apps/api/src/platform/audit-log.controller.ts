import { Controller, Get } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { afterCursor, ApiRoute, AuditEntry, Caller, decodeCursor, pageSchema, paginationQuery, Roles, toPage, ZQuery, type Principal } from '@closebook/platform';

const query = z
  .object({
    ...paginationQuery,
    resource_type: z.string().max(100).optional(),
    resource_id: z.string().max(100).optional(),
    action: z.string().max(100).optional(),
  })
  .strict();

const entryView = z.object({
  id: z.string(),
  actor: z.string(),
  actor_key_id: z.string().nullable(),
  action: z.string(),
  resource_type: z.string(),
  resource_id: z.string(),
  data: z.record(z.string(), z.unknown()).nullable(),
  request_id: z.string().nullable(),
  idempotency_key: z.string().nullable(),
  created_at: z.string(),
});

@Controller('audit-log')
@Roles('finance', 'auditor')
export class AuditLogController {
  constructor(private readonly em: EntityManager) {}

  @Get()
  @ApiRoute({ summary: 'The audit log, newest first', tags: ['platform'], response: pageSchema(entryView) })
  async list(@Caller() caller: Principal, @ZQuery(query) q: z.infer<typeof query>) {
    const rows = await this.em.find(
      AuditEntry,
      {
        organizationId: caller.organizationId,
        ...(q.resource_type ? { resourceType: q.resource_type } : {}),
        ...(q.resource_id ? { resourceId: q.resource_id } : {}),
        ...(q.action ? { action: q.action } : {}),
        ...afterCursor(decodeCursor(q.cursor)),
      },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 },
    );
    return toPage(rows, q.limit, (e) => ({
      id: e.id,
      actor: e.actor,
      actor_key_id: e.actorKeyId ?? null,
      action: e.action,
      resource_type: e.resourceType,
      resource_id: e.resourceId,
      data: e.data ?? null,
      request_id: e.requestId ?? null,
      idempotency_key: e.idempotencyKey ?? null,
      created_at: e.createdAt.toISOString(),
    }));
  }
}
