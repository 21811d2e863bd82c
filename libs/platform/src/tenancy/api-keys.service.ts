import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { createHash, randomBytes } from 'node:crypto';
import { AuditService } from '../audit/audit.service';
import { NotFoundError, ValidationError } from '../errors/domain-error';
import { ROLES, type Role } from '../auth/roles';
import { ApiKey } from './api-key.entity';
import { Organization } from './organization.entity';

const KEY_PREFIX = 'cb_';

export function hashApiKey(plain: string): string {
  return createHash('sha256').update(plain).digest('hex');
}

export interface CreatedApiKey {
  id: string;
  organizationId: string;
  role: Role;
  name: string | null;
  prefix: string;
  /** Shown once, at creation; only its hash is stored. */
  apiKey: string;
  createdAt: Date;
}

/** What a request's key says about its caller. */
export interface AuthenticatedKey {
  id: string;
  organizationId: string;
  role: Role;
  prefix: string;
}

@Injectable()
export class ApiKeysService {
  constructor(private readonly audit: AuditService) {}

  async create(em: EntityManager, organizationId: string, role: string, name?: string): Promise<CreatedApiKey> {
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new ValidationError('invalid_role', `role must be one of ${ROLES.join(', ')}`, 'role');
    }
    const org = await em.findOne(Organization, { id: organizationId });
    if (!org) throw new NotFoundError('organization', organizationId, 'organization_id');
    const plain = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
    const key = em.create(ApiKey, {
      organizationId,
      role: role as Role,
      name: name ?? null,
      prefix: plain.slice(0, KEY_PREFIX.length + 6),
      keyHash: hashApiKey(plain),
    });
    this.audit.record(em, {
      organizationId,
      action: 'api_key.created',
      resourceType: 'api_key',
      resourceId: key.id,
      data: { role, name: name ?? null, prefix: key.prefix },
    });
    await em.flush();
    return { id: key.id, organizationId, role: key.role, name: key.name ?? null, prefix: key.prefix, apiKey: plain, createdAt: key.createdAt };
  }

  async list(em: EntityManager, organizationId: string): Promise<ApiKey[]> {
    return em.find(ApiKey, { organizationId }, { orderBy: { createdAt: 'asc', id: 'asc' } });
  }

  async revoke(em: EntityManager, organizationId: string, keyId: string): Promise<ApiKey> {
    const key = await em.findOne(ApiKey, { id: keyId, organizationId });
    if (!key) throw new NotFoundError('api key', keyId);
    if (!key.revokedAt) {
      key.revokedAt = new Date();
      this.audit.record(em, { organizationId, action: 'api_key.revoked', resourceType: 'api_key', resourceId: key.id });
      await em.flush();
    }
    return key;
  }

  /**
   * The active key for a presented secret, or null. Read as a plain row on every request (not an
   * entity in the request's unit of work): nothing changes it there, and revocation applies at once.
   */
  async authenticate(em: EntityManager, plain: string): Promise<AuthenticatedKey | null> {
    if (!plain.startsWith(KEY_PREFIX) || plain.length > 200) return null;
    const [key] = await em.execute<{ id: string; organization_id: string; role: Role; prefix: string }[]>(
      'select id, organization_id, role, prefix from api_keys where key_hash = ? and revoked_at is null',
      [hashApiKey(plain)],
    );
    return key ? { id: key.id, organizationId: key.organization_id, role: key.role, prefix: key.prefix } : null;
  }
}
