import { Controller, Get, HttpCode, Param, Post, Put } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, pageSchema, paginationQuery, Roles, toPage, ZBody, ZQuery, type Principal } from '@closebook/platform';
import { PlansService } from '@closebook/catalog';
import {
  createPlanBody,
  createVersionBody,
  parseVersionNumber,
  planVersionView,
  planView,
  presentPlan,
  presentPlanVersion,
  updateVersionBody,
} from './catalog.views';

const listQuery = z.object(paginationQuery).strict();

@Controller('plans')
export class PlansController {
  constructor(private readonly plans: PlansService, private readonly em: EntityManager) {}

  @Post()
  @Roles('finance')
  @ApiRoute({ summary: 'Create a plan (its prices are in versions)', tags: ['catalog'], response: planView, errors: [409] })
  async create(@Caller() caller: Principal, @ZBody(createPlanBody) body: z.infer<typeof createPlanBody>) {
    const plan = await this.em.transactional((tx) => this.plans.create(tx, caller.organizationId, body));
    return presentPlan({ plan, versions: [] });
  }

  @Get()
  @Roles('finance', 'support', 'auditor')
  @ApiRoute({ summary: 'List plans with their versions, newest first', tags: ['catalog'], response: pageSchema(planView) })
  async list(@Caller() caller: Principal, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    const rows = await this.plans.list(this.em, caller.organizationId, q);
    const page = toPage(
      rows.map((r) => ({ ...r, createdAt: r.plan.createdAt, id: r.plan.id })),
      q.limit,
      presentPlan,
    );
    return page;
  }

  @Get(':key')
  @Roles('finance', 'support', 'auditor')
  @ApiRoute({ summary: 'A plan by its key, with its versions', tags: ['catalog'], response: planView })
  async get(@Caller() caller: Principal, @Param('key') key: string) {
    return presentPlan(await this.plans.get(this.em, caller.organizationId, key));
  }

  @Post(':key/versions')
  @Roles('finance')
  @ApiRoute({
    summary: 'Create the next version of a plan (published, hence frozen, unless publish is false)',
    description: 'Products are named by key; their terms and prices are validated by the rating core. Errors name the field, e.g. products[1].price.tiers[2].up_to.',
    tags: ['catalog'],
    response: planVersionView,
    errors: [409],
  })
  async createVersion(@Caller() caller: Principal, @Param('key') key: string, @ZBody(createVersionBody) body: z.infer<typeof createVersionBody>) {
    const { publish, ...input } = body;
    return presentPlanVersion(await this.plans.createVersion(this.em, caller.organizationId, key, input, publish));
  }

  @Get(':key/versions/:n')
  @Roles('finance', 'support', 'auditor')
  @ApiRoute({ summary: 'A plan version with its products, terms, prices and rating document', tags: ['catalog'], response: planVersionView })
  async getVersion(@Caller() caller: Principal, @Param('key') key: string, @Param('n') n: string) {
    return presentPlanVersion(await this.plans.getVersion(this.em, caller.organizationId, key, parseVersionNumber(n)));
  }

  @Put(':key/versions/:n')
  @Roles('finance')
  @ApiRoute({ summary: 'Replace a draft version’s products and terms (a published version is frozen: 409)', tags: ['catalog'], response: planVersionView, errors: [409] })
  async updateVersion(@Caller() caller: Principal, @Param('key') key: string, @Param('n') n: string, @ZBody(updateVersionBody) body: z.infer<typeof updateVersionBody>) {
    return presentPlanVersion(await this.plans.updateDraft(this.em, caller.organizationId, key, parseVersionNumber(n), body));
  }

  @Post(':key/versions/:n/publish')
  @HttpCode(200)
  @Roles('finance')
  @ApiRoute({ summary: 'Publish (freeze) a draft version; publishing a published version changes nothing', tags: ['catalog'], response: planVersionView })
  async publish(@Caller() caller: Principal, @Param('key') key: string, @Param('n') n: string) {
    return presentPlanVersion(await this.plans.publish(this.em, caller.organizationId, key, parseVersionNumber(n)));
  }
}
