import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import { JobHandler } from '../queues/job-handler.decorator';
import type { JobPayload } from '../queues/job-registry';
import { JobsService } from '../queues/jobs.service';
import { WebhookAttemptFailedError, WebhookDelivererService, type DeliverOutcome } from './webhook-deliverer.service';
import { WebhookDispatchService, type DispatchResult } from './webhook-dispatch.service';
import { WebhookSettings } from './webhook-settings';

export const DISPATCH_SCHEDULER_ID = 'webhooks-dispatch-outbox';

/** The webhook jobs: dispatching the outbox into deliveries, and sending one delivery. */
@Injectable()
export class WebhookJobs {
  private readonly logger = new Logger('WebhookJobs');

  constructor(
    private readonly em: EntityManager,
    private readonly dispatcher: WebhookDispatchService,
    private readonly deliverer: WebhookDelivererService,
  ) {}

  @JobHandler('webhooks.dispatch-outbox')
  async dispatchOutbox(): Promise<DispatchResult & { requeued: number }> {
    const result = await this.dispatcher.dispatchOutbox(this.em);
    const requeued = await this.dispatcher.requeueStale(this.em);
    if (result.messages || requeued) this.logger.debug({ ...result, requeued }, 'dispatched outbox');
    return { ...result, requeued };
  }

  /** Throws after a failed attempt so BullMQ retries with its backoff; the last failure marks the delivery failed. */
  @JobHandler('webhooks.deliver')
  async deliver(payload: JobPayload<'webhooks.deliver'>, job: Job): Promise<DeliverOutcome> {
    const attempts = job.opts.attempts ?? 1;
    const failedSoFar = job.attemptsMade;
    const backoff = job.opts.backoff;
    const base = typeof backoff === 'number' ? backoff : (backoff?.delay ?? 0);
    const retryInMs = typeof backoff === 'object' && backoff?.type === 'exponential' ? Math.round(2 ** failedSoFar * base) : base;
    const result = await this.deliverer.deliver(this.em, payload.deliveryId, { isLastAttempt: failedSoFar + 1 >= attempts, retryInMs });
    if (result.outcome === 'retry' || result.outcome === 'failed') {
      throw new WebhookAttemptFailedError(`webhook delivery ${payload.deliveryId} attempt ${result.attempt}: ${result.error}`);
    }
    return result;
  }
}

/** Worker only: the job scheduler that runs the dispatch every couple of seconds (keyed in Redis, so every replica may upsert it). */
@Injectable()
export class WebhookScheduler implements OnApplicationBootstrap {
  constructor(private readonly jobs: JobsService, private readonly settings: WebhookSettings) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.jobs.queue('webhooks').upsertJobScheduler(
      DISPATCH_SCHEDULER_ID,
      { every: this.settings.dispatchEveryMs },
      { name: 'webhooks.dispatch-outbox', data: {}, opts: { attempts: 1, removeOnComplete: true, removeOnFail: { age: 3600 } } },
    );
  }
}
