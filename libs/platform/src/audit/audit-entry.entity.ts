import { Entity, Index, Property } from '@mikro-orm/core';
import { TenantEntity } from '../database/base.entity';

/** One state change: who (key or system actor), what, when, under which request and idempotency key. */
@Entity({ tableName: 'audit_log' })
@Index({ properties: ['organizationId', 'createdAt'] })
@Index({ properties: ['organizationId', 'resourceType', 'resourceId'] })
export class AuditEntry extends TenantEntity {
  @Property({ type: 'uuid', nullable: true })
  actorKeyId?: string | null;

  @Property({ type: 'text' })
  actor!: string;

  @Property({ type: 'text' })
  action!: string;

  @Property({ type: 'text' })
  resourceType!: string;

  @Property({ type: 'text' })
  resourceId!: string;

  @Property({ type: 'jsonb', nullable: true })
  data?: Record<string, unknown> | null;

  @Property({ type: 'text', nullable: true })
  requestId?: string | null;

  @Property({ type: 'text', nullable: true })
  idempotencyKey?: string | null;
}
