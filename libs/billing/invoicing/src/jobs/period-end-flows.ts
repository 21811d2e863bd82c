import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { FlowProducer } from 'bullmq';
import { AppConfig, JOBS, JobsService, redisConnection } from '@closebook/platform';

/**
 * Subscriptions (billing periods) per child job of a period-end flow: small enough that a
 * worker's concurrent slots (WORKER_CONCURRENCY) and several workers share a month-end between
 * them, large enough that a child's job overhead (a few Redis round trips) stays negligible.
 */
export const RATING_BATCH_SIZE = 50;

export interface StartedFlows {
  /** Parent job ids of the flows added. */
  started: string[];
  /** Parent job ids of flows still running (not added again). */
  running: string[];
  periods: number;
}

/**
 * Starts the period-end rating: for every (organization, day a period ended) with ended billing
 * periods that have no period invoice, one BullMQ flow — a parent `invoicing.rate-period` waiting
 * for children `invoicing.rate-batch` of up to 200 periods each — with deterministic job ids
 * (`rate-period-{org}-{day}`, `rate-batch-{org}-{day}-{n}`). A flow still in progress is not added
 * twice; a finished one removed itself, so a later tick rates whatever is still unrated (failures).
 * The database (one period invoice per subscription and period) makes every retry harmless.
 */
@Injectable()
export class PeriodEndFlows implements OnModuleDestroy {
  private readonly logger = new Logger('PeriodEndFlows');
  private producer?: FlowProducer;

  constructor(private readonly config: AppConfig, private readonly jobs: JobsService) {}

  async onModuleDestroy(): Promise<void> {
    await this.producer?.close();
  }

  async start(em: EntityManager, now = new Date(), organizationId?: string): Promise<StartedFlows> {
    const groups = await em.execute<{ organization_id: string; day: string; ids: string[] }[]>(
      `select bp.organization_id, to_char(bp.period_end at time zone 'UTC', 'YYYY-MM-DD') as day,
              array_agg(bp.id::text order by bp.subscription_id, bp.seq) as ids
       from billing_periods bp
       where bp.period_end <= ? and bp.period_end > ?::timestamptz - interval '400 days'
         and (?::uuid is null or bp.organization_id = ?::uuid)
         and not exists (select 1 from invoices i where i.kind = 'period' and i.billing_period_id = bp.id)
       group by 1, 2 order by 2, 1 limit 500`,
      [now.toISOString(), now.toISOString(), organizationId ?? null, organizationId ?? null],
    );
    const out: StartedFlows = { started: [], running: [], periods: 0 };
    const queue = this.jobs.queue('billing');
    for (const g of groups) {
      const parentId = `rate-period-${g.organization_id}-${g.day}`;
      const existing = await queue.getJob(parentId);
      if (existing) {
        const state = await existing.getState();
        if (state !== 'completed' && state !== 'failed' && state !== 'unknown') {
          out.running.push(parentId);
          continue;
        }
        await existing.remove().catch(() => undefined);
      }
      const chunks: string[][] = [];
      for (let i = 0; i < g.ids.length; i += RATING_BATCH_SIZE) chunks.push(g.ids.slice(i, i + RATING_BATCH_SIZE));
      await this.flows().add({
        name: 'invoicing.rate-period',
        queueName: 'billing',
        data: JOBS['invoicing.rate-period'].payload.parse({ organization_id: g.organization_id, period_end: g.day }),
        opts: { jobId: parentId, removeOnComplete: true, removeOnFail: true },
        children: chunks.map((ids, n) => ({
          name: 'invoicing.rate-batch',
          queueName: 'billing',
          data: JOBS['invoicing.rate-batch'].payload.parse({ organization_id: g.organization_id, period_end: g.day, billing_period_ids: ids }),
          opts: {
            jobId: `rate-batch-${g.organization_id}-${g.day}-${n}`,
            attempts: 3,
            backoff: { type: 'exponential', delay: 1000 },
            removeOnComplete: true,
            removeOnFail: true,
            ignoreDependencyOnFailure: true,
          },
        })),
      });
      out.started.push(parentId);
      out.periods += g.ids.length;
    }
    if (out.started.length) this.logger.log(out, 'period-end rating flows started');
    return out;
  }

  private flows(): FlowProducer {
    if (!this.producer) {
      this.producer = new FlowProducer({ connection: redisConnection(this.config.redisUrl), prefix: this.config.queuePrefix });
      // An unlistened 'error' event is thrown by Node; a dropped connection is retried by ioredis.
      this.producer.on('error', (err) => this.logger.warn({ err }, 'flow producer connection error'));
    }
    return this.producer;
  }
}
