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

  /**
   * `emit` for many messages in one statement (same transaction rule, same dedupe). Returns the
   * dedupe keys that were new; messages without a key are always written.
   */
  async emitMany(em: EntityManager, events: readonly OutboxEvent[]): Promise<Set<string>> {
    if (!events.length) return new Set();
    const rows = await em.execute<{ dedupe_key: string | null }[]>(
      `insert into outbox_messages (id, organization_id, type, payload, dedupe_key, created_at)
       select x.id, x.organization_id, x.type, x.payload, x.dedupe_key, now()
       from jsonb_to_recordset(?::jsonb) as x(id uuid, organization_id uuid, type text, payload jsonb, dedupe_key text)
       order by x.organization_id, x.dedupe_key
       on conflict (organization_id, dedupe_key) do nothing
       returning dedupe_key`,
      [JSON.stringify(events.map((e) => ({ id: randomUUID(), organization_id: e.organizationId, type: e.type, payload: e.payload, dedupe_key: e.dedupeKey ?? null })))],
    );
    return new Set(rows.map((r) => r.dedupe_key).filter((k): k is string => k !== null));
  }
}
