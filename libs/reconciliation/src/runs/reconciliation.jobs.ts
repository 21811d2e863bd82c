import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import { JobHandler, type JobPayload } from '@closebook/platform';
import type { CheckKey } from '../checks/tolerance';
import { ReconciliationRunsService } from './reconciliation-runs.service';

/** The reconciliation flow's jobs (queue `reconciliation`); each runs in its own MikroORM context. */
@Injectable()
export class ReconciliationJobs {
  private readonly logger = new Logger('ReconciliationJobs');

  constructor(private readonly em: EntityManager, private readonly runs: ReconciliationRunsService) {}

  /** A child: one check of a run. Its last failed attempt records the error in the run's capture. */
  @JobHandler('reconciliation.check')
  async check(payload: JobPayload<'reconciliation.check'>, job: Job) {
    const key = payload.check as CheckKey;
    try {
      return await this.runs.runCheck(this.em, payload.run_id, key);
    } catch (err) {
      const attempts = job.opts.attempts ?? 1;
      if (job.attemptsMade + 1 >= attempts) await this.runs.recordCheckError(this.em.fork(), payload.run_id, key, err).catch(() => undefined);
      this.logger.warn({ err, run_id: payload.run_id, check: key, attempt: job.attemptsMade + 1 }, 'reconciliation check failed');
      throw err;
    }
  }

  /** The parent: runs once every check is done (or failed for good) and finishes the run. */
  @JobHandler('reconciliation.run')
  async run(payload: JobPayload<'reconciliation.run'>) {
    const run = await this.runs.finish(this.em, payload.run_id);
    this.logger.log({ run_id: run.id, organization_id: run.organizationId, period: run.period, status: run.status }, 'reconciliation run finished');
    return { run_id: run.id, status: run.status, capture_hash: run.captureHash };
  }
}
