import { Injectable, Logger } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { JobsOptions, Queue } from 'bullmq';
import { JOBS, QUEUE_NAMES, type JobName, type JobPayload, type QueueName } from './job-registry';

/** Typed producer: a job name decides its queue, and its payload is checked before it is sent. */
@Injectable()
export class JobsService {
  private readonly queues: Record<QueueName, Queue>;

  constructor(
    @InjectQueue('platform') platform: Queue,
    @InjectQueue('metering') metering: Queue,
    @InjectQueue('billing') billing: Queue,
    @InjectQueue('ledger') ledger: Queue,
    @InjectQueue('reconciliation') reconciliation: Queue,
    @InjectQueue('exports') exportsQueue: Queue,
    @InjectQueue('webhooks') webhooks: Queue,
  ) {
    this.queues = { platform, metering, billing, ledger, reconciliation, exports: exportsQueue, webhooks };
    // Unlistened 'error' events are thrown; a closing or failing-over Redis connection must only be logged.
    const logger = new Logger('JobsService');
    for (const q of Object.values(this.queues)) q.on('error', (err) => logger.warn({ err, queue: q.name }, 'queue connection error'));
  }

  queue(name: QueueName): Queue {
    return this.queues[name];
  }

  allQueues(): Queue[] {
    return QUEUE_NAMES.map((n) => this.queues[n]);
  }

  /** `jobId` should be a business key (`rate:{subscription}:{period}`) so a duplicate is one job. */
  async enqueue<N extends JobName>(name: N, payload: JobPayload<N>, opts: JobsOptions = {}) {
    const def = JOBS[name];
    const data = def.payload.parse(payload);
    return this.queues[def.queue].add(name, data, {
      attempts: 5,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
      ...opts,
    });
  }
}
