import { Injectable, Logger } from '@nestjs/common';
import { IdempotencyService } from '../idempotency/idempotency.service';
import { JobHandler } from '../queues/job-handler.decorator';
import { JobsService } from '../queues/jobs.service';

export const IDEMPOTENCY_RETENTION_HOURS = 24;

@Injectable()
export class MaintenanceJobs {
  private readonly logger = new Logger('MaintenanceJobs');

  constructor(private readonly idempotency: IdempotencyService, private readonly jobs: JobsService) {}

  /** BullMQ job schedulers are keyed in Redis, so every worker replica may upsert them safely. */
  async schedule(): Promise<void> {
    await this.jobs.queue('platform').upsertJobScheduler(
      'purge-idempotency-keys',
      { every: 60 * 60 * 1000 },
      { name: 'platform.purge-idempotency-keys', data: {} },
    );
  }

  @JobHandler('platform.purge-idempotency-keys')
  async purgeIdempotencyKeys(): Promise<{ deleted: number }> {
    const deleted = await this.idempotency.purgeOlderThan(IDEMPOTENCY_RETENTION_HOURS);
    if (deleted) this.logger.log({ deleted }, 'purged idempotency keys');
    return { deleted };
  }
}
