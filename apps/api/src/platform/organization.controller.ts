import { Controller, Get } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, OrganizationsService, READ_ROLES, Roles, type Principal } from '@closebook/platform';

@Controller('organization')
export class OrganizationController {
  constructor(private readonly orgs: OrganizationsService, private readonly em: EntityManager) {}

  @Get()
  @Roles(...READ_ROLES, 'ingest')
  @ApiRoute({
    summary: "The caller's organization and the caller's role",
    tags: ['platform'],
    response: z.object({ id: z.string(), name: z.string(), draft_window_minutes: z.number(), proration_strategy: z.string(), role: z.string() }),
  })
  async get(@Caller() caller: Principal) {
    const org = await this.orgs.get(this.em, caller.organizationId);
    return { id: org.id, name: org.name, draft_window_minutes: org.draftWindowMinutes, proration_strategy: org.prorationStrategy, role: caller.role };
  }
}
