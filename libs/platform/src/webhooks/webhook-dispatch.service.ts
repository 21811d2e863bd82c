import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { WebhookDeliveryQueue } from './webhook-delivery-queue';
import { WebhookSettings } from './webhook-settings';

export interface DispatchResult {
  /** Outbox messages marked dispatched. */
  messages: number;
  /** Deliveries created (and enqueued). */
  deliveries: number;
}

/**
 * Turns outbox messages into deliveries. One statement per batch claims the oldest undispatched
 * messages with FOR UPDATE SKIP LOCKED (so any number of workers may run it side by side), creates one
 * delivery per subscribed enabled endpoint (ON CONFLICT on (message, endpoint): a repeated dispatch
 * makes no twin), and marks the messages dispatched — all committed together. The delivery jobs are
 * enqueued after the commit; a crash in between leaves pending deliveries that `requeueStale` finds.
 */
@Injectable()
export class WebhookDispatchService {
  constructor(private readonly queue: WebhookDeliveryQueue, private readonly settings: WebhookSettings) {}

  async dispatchBatch(em: EntityManager, limit = this.settings.dispatchBatchSize): Promise<DispatchResult> {
    const rows = await em.execute<{ message_id: string; delivery_id: string | null }[]>(
      `with batch as (
         select id, organization_id, type, created_at from outbox_messages
         where dispatched_at is null
         order by created_at, id
         limit ?
         for update skip locked
       ), marked as (
         update outbox_messages m set dispatched_at = now() from batch where m.id = batch.id returning m.id
       ), inserted as (
         -- created_at in whole milliseconds, like rows written by entities: the list cursor carries milliseconds.
         insert into webhook_deliveries (id, organization_id, created_at, message_id, endpoint_id, event_type, status, attempt_count, manual_retries, next_attempt_at)
         select gen_random_uuid(), b.organization_id, date_trunc('milliseconds', now()), b.id, e.id, b.type, 'pending', 0, 0, now()
         from batch b
         join webhook_endpoints e on e.organization_id = b.organization_id and e.enabled
           and ('*' = any(e.event_types) or b.type = any(e.event_types))
         order by b.created_at, b.id, e.created_at, e.id
         on conflict (message_id, endpoint_id) do nothing
         returning id, message_id, endpoint_id
       )
       select b.id as message_id, i.id as delivery_id
       from batch b left join inserted i on i.message_id = b.id
       left join webhook_endpoints e on e.id = i.endpoint_id
       order by b.created_at, b.id, e.created_at, e.id`,
      [limit],
    );
    const deliveries = rows.filter((r) => r.delivery_id).map((r) => ({ id: r.delivery_id as string, manualRetries: 0 }));
    await this.queue.enqueue(deliveries);
    return { messages: new Set(rows.map((r) => r.message_id)).size, deliveries: deliveries.length };
  }

  /** Batches until the outbox is drained or the per-run cap is reached (the next run goes on). */
  async dispatchOutbox(em: EntityManager): Promise<DispatchResult> {
    const total: DispatchResult = { messages: 0, deliveries: 0 };
    for (let i = 0; i < this.settings.maxBatchesPerRun; i++) {
      const r = await this.dispatchBatch(em);
      total.messages += r.messages;
      total.deliveries += r.deliveries;
      if (r.messages < this.settings.dispatchBatchSize) break;
    }
    return total;
  }

  /**
   * Pending deliveries whose attempt is overdue by `staleAfterMs` and that no worker holds: their job
   * was lost (a crash between commit and enqueue, a Redis failover). Enqueues them again under their
   * job id (a no-op when the job still exists) and moves their due time to now, so each is looked at
   * once per grace period.
   */
  async requeueStale(em: EntityManager, limit = 500): Promise<number> {
    const rows = await em.execute<{ id: string; manual_retries: number }[]>(
      `update webhook_deliveries d set next_attempt_at = now()
       where d.id in (
         select id from webhook_deliveries
         where status = 'pending'
           and next_attempt_at < now() - (? * interval '1 millisecond')
           and (locked_until is null or locked_until < now())
         order by next_attempt_at
         limit ?
         for update skip locked
       )
       returning d.id, d.manual_retries`,
      [this.settings.staleAfterMs, limit],
    );
    await this.queue.enqueue(rows.map((r) => ({ id: r.id, manualRetries: r.manual_retries })));
    return rows.length;
  }
}
