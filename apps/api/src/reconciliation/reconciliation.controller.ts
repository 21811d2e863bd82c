import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, pageSchema, READ_ROLES, Roles, UuidParam, ZBody, ZQuery, type Principal } from '@closebook/platform';
import { ReconciliationRunsService, TolerancesService } from '@closebook/reconciliation';
import {
  latestView,
  periodParam,
  presentLatest,
  presentResult,
  presentRun,
  presentRunDetail,
  presentTolerance,
  resultsQuery,
  resultView,
  runDetailView,
  runListQuery,
  runView,
  startRunBody,
  toleranceBody,
  toleranceView,
} from './reconciliation.views';

const TAGS = ['reconciliation'];

/** Reconciliation runs of a month (SPEC §6): start (a background flow), follow, read results. docs/reconciliation.md. */
@Controller('periods/:period/reconciliation-runs')
export class ReconciliationRunsController {
  constructor(private readonly runs: ReconciliationRunsService, private readonly em: EntityManager) {}

  @Post()
  @HttpCode(202)
  @Roles('finance')
  @ApiRoute({
    summary: 'Start a reconciliation run of the month (all checks, or those listed): a background flow runs each check; follow it with GET …/{id}',
    tags: TAGS,
    response: runView,
  })
  async start(@Caller() caller: Principal, @Param('period') period: string, @ZBody(startRunBody) body: z.infer<typeof startRunBody>) {
    const run = await this.runs.start(this.em, caller.organizationId, periodParam(period), { checks: body.checks, startedBy: caller.actor });
    return presentRun(run);
  }

  @Get()
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'Reconciliation runs of the month, newest first', tags: TAGS, response: pageSchema(runView) })
  async list(@Caller() caller: Principal, @Param('period') period: string, @ZQuery(runListQuery) q: z.infer<typeof runListQuery>) {
    const page = await this.runs.list(this.em, caller.organizationId, periodParam(period), q);
    return { data: page.data.map(presentRun), next_cursor: page.next_cursor };
  }

  @Get('latest')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'Per check, the latest finished result of the month with its fingerprint', tags: TAGS, response: z.object({ data: z.array(latestView) }) })
  async latest(@Caller() caller: Principal, @Param('period') period: string) {
    return { data: (await this.runs.latest(this.em, caller.organizationId, periodParam(period))).map(presentLatest) };
  }

  @Get(':id')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'A run: status, per-check summary, fingerprints, the capture and its SHA-256', tags: TAGS, response: runDetailView })
  async get(@Caller() caller: Principal, @Param('period') period: string, @UuidParam('id', 'reconciliation_run') id: string) {
    return presentRunDetail(await this.runs.get(this.em, caller.organizationId, periodParam(period), id));
  }

  @Get(':id/results')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'A run’s results (expected, actual, variance, tolerance, status), by check and item; filter by check and status', tags: TAGS, response: pageSchema(resultView) })
  async results(@Caller() caller: Principal, @Param('period') period: string, @UuidParam('id', 'reconciliation_run') id: string, @ZQuery(resultsQuery) q: z.infer<typeof resultsQuery>) {
    const page = await this.runs.results(this.em, caller.organizationId, periodParam(period), id, q);
    return { data: page.data.map(presentResult), next_cursor: page.next_cursor };
  }
}

/** Tolerances per check (absolute and/or percent, both or either). Reads: every reading role; changes: finance. */
@Controller('reconciliation-tolerances')
export class ReconciliationTolerancesController {
  constructor(private readonly tolerances: TolerancesService, private readonly em: EntityManager) {}

  @Get()
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'The tolerance in force for each check (configured, or the default)', tags: TAGS, response: z.object({ data: z.array(toleranceView) }) })
  async list(@Caller() caller: Principal) {
    return { data: (await this.tolerances.all(this.em, caller.organizationId)).map(presentTolerance) };
  }

  @Post()
  @Roles('finance')
  @ApiRoute({
    summary: 'Set a check’s tolerance: absolute (in the item’s unit, money in major units) and/or percent of |expected|; mode both|either. Omitted bounds are not configured.',
    tags: TAGS,
    response: toleranceView,
  })
  async set(@Caller() caller: Principal, @ZBody(toleranceBody) body: z.infer<typeof toleranceBody>) {
    return presentTolerance(await this.tolerances.set(this.em, caller.organizationId, body));
  }
}
