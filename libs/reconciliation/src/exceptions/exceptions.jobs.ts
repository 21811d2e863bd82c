import { Injectable, Logger } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { CreateRequestContext } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { JobHandler, JobsService, type JobPayload } from '@closebook/platform';
import { ExceptionsService } from './exceptions.service';

const SLOT_MS = 5 * 60_000;

/** The job id of the escalation sweep of one 5-minute slot (a repeat in the same slot is one job; BullMQ refuses ':' here). */
export const escalationJobId = (now: Date) => `escalate-exceptions-${Math.floor(now.getTime() / SLOT_MS) * SLOT_MS}`;

/**
 * SLA escalation: the `reconciliation.escalate-exceptions` job (every organization, in batches) and
 * the 5-minute cron that enqueues it. Only processes that import ScheduleModule.forRoot() (the
 * worker) run crons; an advisory lock keeps each tick to one replica, and the job id to one job.
 */
@Injectable()
export class ExceptionsJobs {
  private readonly logger = new Logger('ExceptionsJobs');

  constructor(
    private readonly exceptions: ExceptionsService,
    private readonly jobs: JobsService,
    // Also what @CreateRequestContext forks for the scheduled method.
    private readonly em: EntityManager,
  ) {}

  @JobHandler('reconciliation.escalate-exceptions')
  async escalate(_payload: JobPayload<'reconciliation.escalate-exceptions'>) {
    let escalated = 0;
    for (let i = 0; i < 100; i++) {
      const n = await this.exceptions.escalateDue(this.em.fork(), new Date());
      escalated += n;
      if (n < 1000) break;
    }
    if (escalated) this.logger.log({ escalated }, 'exceptions escalated past their SLA');
    return { escalated };
  }

  @Cron('0 */5 * * * *', { name: 'reconciliation.escalate-exceptions', timeZone: 'UTC' })
  @CreateRequestContext()
  async tick(now: Date = new Date()): Promise<boolean> {
    return this.em.transactional(async (tx) => {
      const [lock] = await tx.execute<{ ok: boolean }[]>(`select pg_try_advisory_xact_lock(hashtext('closebook.reconciliation.escalate-exceptions')) as ok`);
      if (!lock?.ok) return false;
      await this.jobs.enqueue('reconciliation.escalate-exceptions', {}, { jobId: escalationJobId(now) });
      return true;
    });
  }
}
