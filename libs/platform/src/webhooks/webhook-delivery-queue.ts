import { Injectable } from '@nestjs/common';
import { JobsService } from '../queues/jobs.service';
import { WebhookSettings } from './webhook-settings';

export interface QueuedDelivery {
  id: string;
  manualRetries: number;
}

/**
 * The BullMQ job of a delivery has the delivery's id as its job id; an operator's retry of a failed
 * delivery is a new job (`<id>-retry-<n>`), since the failed one keeps its id until BullMQ drops it.
 * Enqueuing an id that is already queued is a no-op, so the stale-delivery sweep may repeat it freely.
 */
export function deliveryJobId(d: QueuedDelivery): string {
  return d.manualRetries > 0 ? `${d.id}-retry-${d.manualRetries}` : d.id;
}

@Injectable()
export class WebhookDeliveryQueue {
  constructor(private readonly jobs: JobsService, private readonly settings: WebhookSettings) {}

  async enqueue(deliveries: QueuedDelivery[]): Promise<void> {
    const { attempts, backoffDelayMs } = this.settings;
    await Promise.all(
      deliveries.map((d) =>
        this.jobs.enqueue(
          'webhooks.deliver',
          { deliveryId: d.id },
          {
            jobId: deliveryJobId(d),
            attempts,
            backoff: { type: 'exponential', delay: backoffDelayMs },
            removeOnComplete: { age: 24 * 3600, count: 50_000 },
            removeOnFail: { age: 7 * 24 * 3600 },
          },
        ),
      ),
    );
  }
}
