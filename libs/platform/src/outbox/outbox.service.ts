import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import type { WebhookEventType } from './outbox-message.entity';

export interface OutboxEvent {
  organizationId: string;
  type: WebhookEventType;
  payload: Record<string, unknown>;
  /** When set, a second emit with the same key is a no-op (enforced by a unique index). */
  dedupeKey?: string;
}

@Injectable()
export class OutboxService {
  /**
   * Writes the message through `em`, inside whatever transaction `em` is in, so the announcement
   * commits exactly when the change does. Returns false when the dedupe key was already used.
   */
  async emit(em: EntityManager, ev: OutboxEvent): Promise<boolean> {
    const rows = await em.execute<{ id: string }[]>(
      `insert into outbox_messages (id, organization_id, type, payload, dedupe_key, created_at)
       values (?, ?, ?, ?::jsonb, ?, now())
       on conflict (organization_id, dedupe_key) do nothing
       returning id`,
      [randomUUID(), ev.organizationId, ev.type, JSON.stringify(ev.payload), ev.dedupeKey ?? null],
    );
    return rows.length === 1;
  }
}
