import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import { JobHandler, JobsService, type JobPayload } from '@closebook/platform';
import { InvoicesService, type FinalizeDueResult } from '../invoices.service';
import { LateUsageService } from '../late-usage.service';
import { PeriodRatingService } from '../rating/period-rating.service';
import { PeriodEndFlows, type StartedFlows } from './period-end-flows';

/** How often each schedule runs (BullMQ job schedulers, kept once in Redis however many workers start). */
export const PERIOD_END_EVERY_MS = 60_000;
export const FINALIZE_DUE_EVERY_MS = 60_000;
export const WATCH_USAGE_EVERY_MS = 30_000;

export interface BatchResult {
  rated: number;
  existing: number;
  failed: { billing_period_id: string; code: string; message: string }[];
}

/** The invoicing jobs (queue `billing`); each runs in its own MikroORM context (JobDispatcher). */
@Injectable()
export class InvoicingJobs {
  private readonly logger = new Logger('InvoicingJobs');

  constructor(
    private readonly em: EntityManager,
    private readonly jobs: JobsService,
    private readonly flows: PeriodEndFlows,
    private readonly rating: PeriodRatingService,
    private readonly invoices: InvoicesService,
    private readonly lateUsage: LateUsageService,
  ) {}

  async schedule(): Promise<void> {
    const billing = this.jobs.queue('billing');
    await billing.upsertJobScheduler('invoicing-period-end', { every: PERIOD_END_EVERY_MS }, { name: 'invoicing.period-end', data: {} });
    await billing.upsertJobScheduler('invoicing-finalize-due', { every: FINALIZE_DUE_EVERY_MS }, { name: 'invoicing.finalize-due', data: {} });
    await billing.upsertJobScheduler('invoicing-watch-usage', { every: WATCH_USAGE_EVERY_MS }, { name: 'invoicing.watch-usage', data: {} });
  }

  /** Finds ended periods without a period invoice and starts their rating flows. */
  @JobHandler('invoicing.period-end')
  async periodEnd(payload: JobPayload<'invoicing.period-end'>): Promise<StartedFlows> {
    return this.flows.start(this.em, new Date(), payload.organization_id);
  }

  /** A flow's child: rates a batch of periods set-based (`rateMany`); a period that cannot be rated is reported, never blocks the rest. */
  @JobHandler('invoicing.rate-batch')
  async rateBatch(payload: JobPayload<'invoicing.rate-batch'>): Promise<BatchResult> {
    const out: BatchResult = { rated: 0, existing: 0, failed: [] };
    const now = new Date();
    for (const res of await this.rating.rateMany(this.em.fork(), payload.billing_period_ids, now)) {
      if (res.error) {
        const err = res.error;
        out.failed.push({ billing_period_id: res.billing_period_id, code: (err.details?.code as string | undefined) ?? err.code, message: err.message });
        this.logger.warn({ billing_period_id: res.billing_period_id, code: err.code, message: err.message }, 'a billing period could not be rated');
      } else if (res.created) out.rated++;
      else out.existing++;
    }
    return out;
  }

  /** A flow's parent: runs once its children are done, sums up what they did and refreshes the statistics of what they wrote. */
  @JobHandler('invoicing.rate-period')
  async ratePeriodParent(payload: JobPayload<'invoicing.rate-period'>, job: Job): Promise<BatchResult & { batches: number; failed_batches: number }> {
    const values = Object.values(await job.getChildrenValues<BatchResult>());
    const ignored = Object.keys((await job.getIgnoredChildrenFailures?.()) ?? {}).length;
    const sum: BatchResult & { batches: number; failed_batches: number } = { rated: 0, existing: 0, failed: [], batches: values.length + ignored, failed_batches: ignored };
    for (const v of values) {
      sum.rated += v?.rated ?? 0;
      sum.existing += v?.existing ?? 0;
      sum.failed.push(...(v?.failed ?? []));
    }
    const analyzed = await this.rating.refreshStatistics(this.em.fork(), sum.rated);
    this.logger.log({ organization_id: payload.organization_id, period_end: payload.period_end, ...sum, failed: sum.failed.length, analyzed }, 'period-end rating done');
    return sum;
  }

  @JobHandler('invoicing.finalize-due')
  async finalizeDue(): Promise<FinalizeDueResult> {
    return this.invoices.finalizeDue(this.em);
  }

  /** Late events: re-rates drafts whose rollups changed, records late usage of finalized invoices. */
  @JobHandler('invoicing.watch-usage')
  async watchUsage(payload: JobPayload<'invoicing.watch-usage'>): Promise<{ rerated: number; late_usage: number }> {
    return this.lateUsage.watch(this.em, new Date(), payload.organization_id);
  }
}
