import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { RequestScopes } from '../context/request-context';
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
    const scope = RequestScopes.current();
    const entry = em.create(AuditEntry, {
      organizationId: rec.organizationId,
      actorKeyId: scope?.principal?.keyId ?? null,
      actor: scope?.principal?.actor ?? 'system',
      action: rec.action,
      resourceType: rec.resourceType,
      resourceId: rec.resourceId,
      data: rec.data ?? null,
      requestId: scope?.requestId ?? null,
      idempotencyKey: scope?.idempotencyKey ?? null,
    });
    em.persist(entry);
    return entry;
  }
}
