import { Entity, Enum, Index, PrimaryKey, Property, type Opt } from '@mikro-orm/core';

/** The stored outcome of a POST under an Idempotency-Key, per organization. */
@Entity({ tableName: 'idempotency_keys' })
export class IdempotencyRecord {
  @PrimaryKey({ type: 'uuid' })
  organizationId!: string;

  @PrimaryKey({ type: 'text' })
  key!: string;

  @Property({ type: 'text' })
  requestHash!: string;

  @Property({ type: 'text' })
  method!: string;

  @Property({ type: 'text' })
  path!: string;

  @Enum({ items: ['in_progress', 'completed'] })
  state!: 'in_progress' | 'completed';

  @Property({ type: 'integer', nullable: true })
  responseStatus?: number | null;

  @Property({ type: 'jsonb', nullable: true })
  responseBody?: unknown;

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  @Index()
  createdAt: Opt<Date> = new Date();

  @Property({ type: 'timestamptz', nullable: true })
  completedAt?: Date | null;
}
