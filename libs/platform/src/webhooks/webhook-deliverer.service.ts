import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { postWebhook, type WebhookPostResult } from './webhook-sender';
import { WebhookSettings } from './webhook-settings';

export interface AttemptContext {
  /** BullMQ will not try again after this attempt. */
  isLastAttempt: boolean;
  /** When this attempt fails and is not the last: how long until BullMQ runs the next one. */
  retryInMs: number;
}

export type DeliverOutcome =
  | { outcome: 'succeeded' | 'retry' | 'failed'; attempt: number; statusCode: number | null; error: string | null }
  | { outcome: 'skipped'; reason: string };

/** Thrown by the delivery job when an attempt failed and BullMQ should retry it with backoff. */
export class WebhookAttemptFailedError extends Error {}

interface ClaimedRow {
  id: string;
  organization_id: string;
  attempt_count: number;
  url: string;
  enabled: boolean;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  message_id: string;
  type: string;
  payload: Record<string, unknown>;
  message_created_at: Date;
}

/**
 * Sends one delivery: leases the row (so a duplicate job waits its turn instead of posting twice),
 * posts outside any transaction, then records the attempt in the delivery log and the delivery's
 * new state in one transaction.
 */
@Injectable()
export class WebhookDelivererService {
  constructor(private readonly settings: WebhookSettings) {}

  async deliver(em: EntityManager, deliveryId: string, ctx: AttemptContext): Promise<DeliverOutcome> {
    const [row] = await em.execute<ClaimedRow[]>(
      `update webhook_deliveries d set locked_until = now() + (? * interval '1 millisecond')
       from webhook_endpoints e, outbox_messages m
       where d.id = ? and e.id = d.endpoint_id and m.id = d.message_id
         and d.status = 'pending' and (d.locked_until is null or d.locked_until < now())
       returning d.id, d.organization_id, d.attempt_count, e.url, e.enabled, e.secret, e.previous_secret,
         e.previous_secret_expires_at, m.id as message_id, m.type, m.payload, m.created_at as message_created_at`,
      [this.settings.leaseMs, deliveryId],
    );
    if (!row) {
      const [current] = await em.execute<{ status: string }[]>(`select status from webhook_deliveries where id = ?`, [deliveryId]);
      return { outcome: 'skipped', reason: current ? (current.status === 'pending' ? 'in_flight' : current.status) : 'not_found' };
    }

    const attempt = row.attempt_count + 1;
    if (!row.enabled) {
      // Nothing is sent to a disabled endpoint; an operator may retry once it is enabled again.
      await em.execute(
        `update webhook_deliveries set status = 'failed', last_error = 'endpoint is disabled', completed_at = now(),
           next_attempt_at = null, locked_until = null where id = ?`,
        [row.id],
      );
      return { outcome: 'skipped', reason: 'endpoint_disabled' };
    }

    const now = new Date();
    const secrets = [row.secret];
    if (row.previous_secret && row.previous_secret_expires_at && new Date(row.previous_secret_expires_at) > now) secrets.push(row.previous_secret);
    const result = await postWebhook({
      url: row.url,
      deliveryId: row.id,
      event: {
        id: row.message_id,
        type: row.type,
        created_at: new Date(row.message_created_at).toISOString(),
        organization_id: row.organization_id,
        data: row.payload,
      },
      secrets,
      timeoutMs: this.settings.timeoutMs,
      responseBodyLimit: this.settings.responseBodyLimit,
      now,
    });

    const outcome = result.ok ? 'succeeded' : ctx.isLastAttempt ? 'failed' : 'retry';
    await this.record(em, row, attempt, result, outcome, ctx.retryInMs);
    return { outcome, attempt, statusCode: result.statusCode, error: result.error };
  }

  private async record(em: EntityManager, row: ClaimedRow, attempt: number, r: WebhookPostResult, outcome: 'succeeded' | 'retry' | 'failed', retryInMs: number) {
    await em.transactional(async (tx) => {
      await tx.execute(
        `insert into webhook_delivery_attempts
           (id, organization_id, created_at, delivery_id, attempt_number, succeeded, status_code, duration_ms, error, response_body, response_body_truncated)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [randomUUID(), row.organization_id, r.startedAt, row.id, attempt, r.ok, r.statusCode, r.durationMs, r.error, r.responseBody, r.responseBodyTruncated],
      );
      await tx.execute(
        `update webhook_deliveries set
           attempt_count = ?, last_attempt_at = ?, last_status_code = ?, last_error = ?,
           status = ?, completed_at = ?, next_attempt_at = ?, locked_until = null
         where id = ?`,
        [
          attempt,
          r.startedAt,
          r.statusCode,
          r.error,
          outcome === 'retry' ? 'pending' : outcome,
          outcome === 'retry' ? null : new Date(),
          outcome === 'retry' ? new Date(Date.now() + retryInMs) : null,
          row.id,
        ],
      );
    });
  }
}
