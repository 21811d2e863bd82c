import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { JobHandler, JobsService, type JobPayload } from '@closebook/platform';
import { UsagePartitions } from '../ingest/partitions';
import { RollupsService, type ProcessDirtyResult } from '../rollups/rollups.service';

/** How often the sweep recomputes whatever is still marked dirty (missed or failed jobs). */
export const ROLLUP_SWEEP_EVERY_MS = 5_000;
/** How often current periods that were never rolled up are looked for. */
export const ATTRIBUTION_SWEEP_EVERY_MS = 60_000;
const JOB_BUDGET_MS = 20_000;

/** The metering jobs; each runs in its own MikroORM context (JobDispatcher). */
@Injectable()
export class MeteringJobs {
  private readonly logger = new Logger('MeteringJobs');

  constructor(
    private readonly em: EntityManager,
    private readonly rollups: RollupsService,
    private readonly partitions: UsagePartitions,
    private readonly jobs: JobsService,
  ) {}

  /** BullMQ job schedulers are keyed in Redis: every worker replica may upsert them. */
  async schedule(): Promise<void> {
    const queue = this.jobs.queue('metering');
    await queue.upsertJobScheduler('metering-sweep', { every: ROLLUP_SWEEP_EVERY_MS }, { name: 'metering.sweep', data: {} });
    await queue.upsertJobScheduler('metering-attribution-sweep', { every: ATTRIBUTION_SWEEP_EVERY_MS }, { name: 'metering.attribution-sweep', data: {} });
  }

  /** Enqueued by ingest (at most one per organization per second): recomputes that organization's dirty pairs. */
  @JobHandler('metering.rollup')
  async rollup(payload: JobPayload<'metering.rollup'>): Promise<ProcessDirtyResult> {
    return this.rollups.processDirty(this.em, { organizationId: payload.organization_id, budgetMs: JOB_BUDGET_MS });
  }

  /** Every few seconds: partitions ahead, then every dirty pair of every organization. */
  @JobHandler('metering.sweep')
  async sweep(): Promise<ProcessDirtyResult> {
    await this.partitions.ensureAhead(this.em);
    const res = await this.rollups.processDirty(this.em, { budgetMs: JOB_BUDGET_MS });
    if (res.processed) this.logger.debug(res, 'rollup sweep');
    return res;
  }

  /** Every minute: current periods never rolled up are marked (and the next sweep rolls them up). */
  @JobHandler('metering.attribution-sweep')
  async attributionSweep(): Promise<{ marked: number }> {
    return { marked: await this.rollups.markUnrolledCurrentPeriods(this.em) };
  }
}
