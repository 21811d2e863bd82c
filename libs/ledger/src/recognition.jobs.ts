import { Injectable, Logger } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { CreateRequestContext } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { JobHandler, type JobPayload } from '@closebook/platform';
import { addPeriods, periodOf, todayUtc } from './dates';
import { RevenueRecognitionService, type RecognitionRunResult } from './recognition.service';

/**
 * The monthly revenue recognition run: the `ledger.recognize-revenue` job (one per organization and
 * month, job id `recognize:{org}:{period}`), and the month-start fan-out that enqueues it.
 */
@Injectable()
export class RevenueRecognitionJobs {
  private readonly logger = new Logger('RevenueRecognitionJobs');

  constructor(
    private readonly recognition: RevenueRecognitionService,
    // Also what @CreateRequestContext forks for the scheduled method.
    private readonly em: EntityManager,
  ) {}

  @JobHandler('ledger.recognize-revenue')
  async recognize(payload: JobPayload<'ledger.recognize-revenue'>) {
    const r: RecognitionRunResult = await this.recognition.recognize(this.em, payload.organization_id, payload.period);
    return {
      period: r.period,
      schedules: r.schedules,
      entries_posted: r.entriesPosted,
      recognized: Object.fromEntries(Object.entries(r.recognized).map(([c, m]) => [c, m.format()])),
    };
  }

  /**
   * 00:30 UTC on the 1st: enqueue last month's run for every organization with a schedule in
   * service. Only processes that import ScheduleModule.forRoot() (the worker) run crons; an
   * advisory lock keeps it to one replica at a time, and job ids keep a repeat to one job each.
   */
  @Cron('0 30 0 1 * *', { name: 'ledger.recognition-fanout', timeZone: 'UTC' })
  @CreateRequestContext()
  async fanOut(now: Date = new Date()): Promise<number> {
    const period = addPeriods(periodOf(todayUtc(now)), -1);
    return this.em.transactional(async (tx) => {
      const [lock] = await tx.execute<{ ok: boolean }[]>(`select pg_try_advisory_xact_lock(hashtext('closebook.ledger.recognition-fanout')) as ok`);
      if (!lock?.ok) return 0;
      const orgs = await this.recognition.organizationsToRecognize(tx, period);
      for (const org of orgs) await this.recognition.enqueue(org, period);
      if (orgs.length) this.logger.log({ period, organizations: orgs.length }, 'revenue recognition enqueued');
      return orgs.length;
    });
  }
}
