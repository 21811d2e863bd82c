import { Injectable, Logger } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { CreateRequestContext } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { JobHandler, JobsService, type JobPayload } from '@closebook/platform';
import { addPeriods, periodOf, toDate } from '@closebook/ledger';
import { UsageAccrualService, type UsageAccrualResult } from './usage-accrual.service';

export const usageAccrualJobId = (organizationId: string, period: string) => `accrue-usage:${organizationId}:${period}`;

/** The month-end usage accrual: job `invoicing.accrue-usage` per organization and month, and its month-start fan-out. */
@Injectable()
export class UsageAccrualJobs {
  private readonly logger = new Logger('UsageAccrualJobs');

  constructor(
    private readonly accruals: UsageAccrualService,
    private readonly jobs: JobsService,
    private readonly em: EntityManager,
  ) {}

  @JobHandler('invoicing.accrue-usage')
  async accrue(payload: JobPayload<'invoicing.accrue-usage'>): Promise<UsageAccrualResult> {
    return this.accruals.accrue(this.em, payload.organization_id, payload.period);
  }

  async enqueue(organizationId: string, period: string): Promise<void> {
    await this.jobs.enqueue('invoicing.accrue-usage', { organization_id: organizationId, period }, { jobId: usageAccrualJobId(organizationId, period) });
  }

  /**
   * 00:45 UTC on the 1st (after the rollups of the month's last minutes settle): last month's accrual
   * for every organization with a billing period in it. Worker only; one replica (advisory lock).
   */
  @Cron('0 45 0 1 * *', { name: 'invoicing.usage-accrual-fanout', timeZone: 'UTC' })
  @CreateRequestContext()
  async fanOut(now: Date = new Date()): Promise<number> {
    const period = addPeriods(periodOf(toDate(now)), -1);
    return this.em.transactional(async (tx) => {
      const [lock] = await tx.execute<{ ok: boolean }[]>(`select pg_try_advisory_xact_lock(hashtext('closebook.invoicing.usage-accrual-fanout')) as ok`);
      if (!lock?.ok) return 0;
      const start = `${period}-01`;
      const orgs = await tx.execute<{ organization_id: string }[]>(
        `select distinct organization_id from billing_periods where period_start < (?::date + interval '1 month') and period_end > ?::date`,
        [start, start],
      );
      for (const o of orgs) await this.enqueue(o.organization_id, period);
      if (orgs.length) this.logger.log({ period, organizations: orgs.length }, 'usage accruals enqueued');
      return orgs.length;
    });
  }
}
