import { Controller, Get, Post, HttpCode } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiKeysService, ApiRoute, Caller, ROLES, Roles, UuidParam, ZBody, type ApiKey, type Principal } from '@closebook/platform';

const createKey = z.object({ role: z.enum(ROLES), name: z.string().min(1).max(200).optional() }).strict();
const keyView = z.object({ id: z.string(), role: z.enum(ROLES), name: z.string().nullable(), prefix: z.string(), created_at: z.string(), revoked_at: z.string().nullable() });

const present = (k: ApiKey) => ({
  id: k.id,
  role: k.role,
  name: k.name ?? null,
  prefix: k.prefix,
  created_at: k.createdAt.toISOString(),
  revoked_at: k.revokedAt ? k.revokedAt.toISOString() : null,
});

@Controller('api-keys')
@Roles('admin')
export class ApiKeysController {
  constructor(private readonly keys: ApiKeysService, private readonly em: EntityManager) {}

  @Post()
  @ApiRoute({ summary: 'Create an API key (its secret is shown once, in this answer)', tags: ['platform'], response: keyView.extend({ api_key: z.string() }) })
  async create(@Caller() caller: Principal, @ZBody(createKey) body: z.infer<typeof createKey>) {
    const created = await this.em.transactional((tx) => this.keys.create(tx, caller.organizationId, body.role, body.name));
    return {
      id: created.id,
      role: created.role,
      name: created.name,
      prefix: created.prefix,
      created_at: created.createdAt.toISOString(),
      revoked_at: null,
      api_key: created.apiKey,
    };
  }

  @Get()
  @ApiRoute({ summary: 'List API keys (hashes and secrets are never returned)', tags: ['platform'], response: z.object({ data: z.array(keyView) }) })
  async list(@Caller() caller: Principal) {
    return { data: (await this.keys.list(this.em, caller.organizationId)).map(present) };
  }

  @Post(':id/revoke')
  @HttpCode(200)
  @ApiRoute({ summary: 'Revoke an API key', tags: ['platform'], response: keyView })
  async revoke(@Caller() caller: Principal, @UuidParam('id', 'api key') id: string) {
    return present(await this.em.transactional((tx) => this.keys.revoke(tx, caller.organizationId, id)));
  }
}
