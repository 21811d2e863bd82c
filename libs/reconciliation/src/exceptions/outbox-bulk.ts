import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import type { OutboxEvent } from '@closebook/platform';

/**
 * The set-based twin of OutboxService.emit for bulk paths (a run opening or resolving thousands of
 * items, the escalation sweep): the same rows, the same dedupe rule, in one statement per chunk,
 * through the caller's transaction.
 */
export async function emitAll(em: EntityManager, events: OutboxEvent[], chunk = 1000): Promise<number> {
  let n = 0;
  for (let i = 0; i < events.length; i += chunk) {
    const rows = events.slice(i, i + chunk).map((e) => ({ id: randomUUID(), organization_id: e.organizationId, type: e.type, payload: e.payload, dedupe_key: e.dedupeKey ?? null }));
    const inserted = await em.execute<{ id: string }[]>(
      `insert into outbox_messages (id, organization_id, type, payload, dedupe_key, created_at)
       select x.id, x.organization_id, x.type, x.payload, x.dedupe_key, now()
       from jsonb_to_recordset(?::jsonb) as x(id uuid, organization_id uuid, type text, payload jsonb, dedupe_key text)
       on conflict (organization_id, dedupe_key) do nothing
       returning id`,
      [JSON.stringify(rows)],
    );
    n += inserted.length;
  }
  return n;
}
