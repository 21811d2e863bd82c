import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { RequestScopes } from '../context/request-context';
import { insertRows } from '../database/insert-rows';
import { AuditEntry } from './audit-entry.entity';

export interface AuditRecord {
  organizationId: string;
  action: string;
  resourceType: string;
  resourceId: string;
  data?: Record<string, unknown>;
}

/**
 * Writes audit entries through the caller's EntityManager, so the entry commits (or rolls back)
 * with the change it records. Actor, request id and idempotency key come from the request scope.
 */
@Injectable()
export class AuditService {
  record(em: EntityManager, rec: AuditRecord): AuditEntry {
    const entry = em.create(AuditEntry, entryOf(rec));
    em.persist(entry);
    return entry;
  }

  /**
   * Many entries in one INSERT, now, in the caller's transaction, outside its unit of work: for
   * set-based writers (a page of invoices) whose other rows are not managed entities either.
   */
  async insertMany(em: EntityManager, recs: readonly AuditRecord[]): Promise<void> {
    if (!recs.length) return;
    const now = new Date();
    await insertRows(
      em,
      AuditEntry,
      recs.map((rec) => ({ id: randomUUID(), createdAt: now, ...entryOf(rec) })),
    );
  }
}

/** An entry's columns: the record, with actor, request id and idempotency key from the request scope. */
function entryOf(rec: AuditRecord) {
  const scope = RequestScopes.current();
  return {
    organizationId: rec.organizationId,
    actorKeyId: scope?.principal?.keyId ?? null,
    actor: scope?.principal?.actor ?? 'system',
    action: rec.action,
    resourceType: rec.resourceType,
    resourceId: rec.resourceId,
    data: rec.data ?? null,
    requestId: scope?.requestId ?? null,
    idempotencyKey: scope?.idempotencyKey ?? null,
  };
}
