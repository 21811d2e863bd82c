import { Injectable } from '@nestjs/common';
import { JobsService } from '../queues/jobs.service';

export const DISPATCH_KICK_DEDUPE_ID = 'webhooks-dispatch-kick';

/**
 * Asks for a dispatch now rather than at the scheduler's next tick. Call it after the transaction
 * that wrote outbox messages has committed (before, the dispatcher could not see them yet). Kicks
 * are deduplicated: while one waits, more are dropped; while one runs, one follow-up is kept, so a
 * message committed during a run is still picked up at once.
 */
@Injectable()
export class WebhookDispatchTrigger {
  constructor(private readonly jobs: JobsService) {}

  async kick(): Promise<void> {
    await this.jobs.enqueue(
      'webhooks.dispatch-outbox',
      {},
      { deduplication: { id: DISPATCH_KICK_DEDUPE_ID, keepLastIfActive: true }, attempts: 1, removeOnComplete: true, removeOnFail: { age: 3600 } },
    );
  }
}
