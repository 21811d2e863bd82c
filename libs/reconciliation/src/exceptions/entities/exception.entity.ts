import { Check, Entity, Enum, Index, ManyToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import {
  EXCEPTION_STATUSES,
  EXCEPTION_TYPES,
  RESOLUTION_KINDS,
  type Evidence,
  type ExceptionStatus,
  type ExceptionType,
  type ResolutionKind,
} from '../model';
import { ExceptionQueue } from './exception-queue.entity';

/** A resolution an exception had before it was reopened (kept: accepted evidence is frozen). */
export interface PastResolution {
  status: ExceptionStatus;
  resolution_kind: ResolutionKind | null;
  resolution_note: string | null;
  evidence: Evidence | null;
  resolved_at: string | null;
  reopened_at: string;
  reopen_reason: string;
}

/**
 * One item over tolerance (SPEC §6), keyed by (check, item, period) — unique in the database, so a
 * re-run updates it and never opens a twin. Written in SQL by ExceptionsService (set-based upserts);
 * the entity is for reads and for the schema. `evidence` of an item resolved as `accepted` is
 * frozen (trigger `exceptions_accepted_frozen`).
 */
@Entity({ tableName: 'exceptions' })
@Unique({ properties: ['organizationId', 'checkKey', 'itemKey', 'period'] })
@Index({ properties: ['organizationId', 'period', 'status'] })
@Index({ properties: ['organizationId', 'createdAt'] })
@Index({ properties: ['status', 'slaDueAt'] })
@Check({ name: 'exceptions_period_check', expression: `period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'` })
@Check({ name: 'exceptions_resolution_check', expression: `(status = 'resolved') = (resolution_kind is not null)` })
export class ReconciliationException extends TenantEntity {
  @ManyToOne({ entity: () => ExceptionQueue, fieldName: 'queue_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  queueId!: string;

  @Enum({ items: [...EXCEPTION_TYPES] })
  type!: ExceptionType;

  /** The check that found it (`events_rollups`, `late_usage`, `dispute`...). */
  @Property({ type: 'text' })
  checkKey!: string;

  /** The compared item within the check (a rollup id, an invoice line id, `summary`...). */
  @Property({ type: 'text' })
  itemKey!: string;

  /** `YYYY-MM`. */
  @Property({ type: 'text' })
  period!: string;

  @Enum({ items: [...EXCEPTION_STATUSES], default: 'open' })
  status: Opt<ExceptionStatus> = 'open';

  @Property({ type: 'text' })
  title!: string;

  /** The currency of expected/actual/variance when they are money; null for counts. */
  @Property({ type: 'text', nullable: true })
  currency?: string | null;

  @Property({ type: 'decimal', columnType: 'numeric', nullable: true })
  expected?: string | null;

  @Property({ type: 'decimal', columnType: 'numeric', nullable: true })
  actual?: string | null;

  @Property({ type: 'decimal', columnType: 'numeric', nullable: true })
  variance?: string | null;

  /** The tolerance in force when it was last seen (as the check states it). */
  @Property({ type: 'jsonb', nullable: true })
  tolerance?: Record<string, unknown> | null;

  @Property({ type: 'jsonb', defaultRaw: `'{}'::jsonb` })
  details: Opt<Record<string, unknown>> = {};

  @Property({ type: 'uuid', nullable: true, index: true })
  invoiceId?: string | null;

  @Property({ type: 'uuid', nullable: true })
  invoiceLineId?: string | null;

  @Property({ type: 'uuid', nullable: true })
  subscriptionId?: string | null;

  @Property({ type: 'uuid', nullable: true })
  customerId?: string | null;

  @Property({ type: 'text', nullable: true })
  assignee?: string | null;

  @Property({ type: 'boolean', default: false })
  escalated: Opt<boolean> = false;

  @Property({ type: 'timestamptz', nullable: true })
  escalatedAt?: Date | null;

  @Property({ type: 'timestamptz' })
  slaDueAt!: Date;

  @Property({ type: 'timestamptz' })
  openedAt!: Date;

  @Property({ type: 'timestamptz', nullable: true })
  resolvedAt?: Date | null;

  @Enum({ items: [...RESOLUTION_KINDS], nullable: true })
  resolutionKind?: ResolutionKind | null;

  /** The resolution's note (or the waiver's). */
  @Property({ type: 'text', nullable: true })
  resolutionNote?: string | null;

  /** The documents the resolution points to; frozen once resolved as `accepted`. */
  @Property({ type: 'jsonb', nullable: true })
  evidence?: Evidence | null;

  /** Resolutions before each reopening, oldest first. */
  @Property({ type: 'jsonb', defaultRaw: `'[]'::jsonb` })
  pastResolutions: Opt<PastResolution[]> = [];

  @Property({ type: 'int', default: 0 })
  reopenCount: Opt<number> = 0;

  /** The reconciliation run that last saw it failing. */
  @Property({ type: 'uuid', nullable: true })
  runId?: string | null;

  @Property({ type: 'timestamptz' })
  lastSeenAt!: Date;

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  updatedAt: Opt<Date> = new Date();
}
