import { ArrayType, Check, Entity, Enum, Property, Unique, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { REVIEW_CADENCES, type EvidenceRequirement, type ExceptionType, type ReviewCadence } from '../model';

/**
 * An owned queue of exceptions (SPEC §6): who owns it, whom to escalate to, how often it is
 * reviewed, its SLA, the evidence a resolution must show, and the exception types routed to it.
 * `key` is unique per organization and never changes (the defaults are found by it).
 */
@Entity({ tableName: 'exception_queues' })
@Unique({ properties: ['organizationId', 'key'] })
@Check({ name: 'exception_queues_sla_hours_check', expression: 'sla_hours > 0' })
@Check({ name: 'exception_queues_key_check', expression: `key ~ '^[a-z0-9][a-z0-9_-]{0,62}$'` })
export class ExceptionQueue extends TenantEntity {
  @Property({ type: 'text' })
  key!: string;

  @Property({ type: 'text' })
  name!: string;

  /** The team or person answerable for the queue (e.g. `finance`). */
  @Property({ type: 'text' })
  owner!: string;

  /** Who hears about an item past its SLA (e.g. `controller`, an email address). */
  @Property({ type: 'text' })
  escalationContact!: string;

  @Enum({ items: [...REVIEW_CADENCES] })
  reviewCadence!: ReviewCadence;

  /** Hours from opening (or reopening) to escalation. */
  @Property({ type: 'int' })
  slaHours!: number;

  /** Each entry a kind, or a list of kinds of which one must be shown (docs/exceptions.md). */
  @Property({ type: 'jsonb' })
  requiredEvidence!: EvidenceRequirement[];

  /** The exception types routed here. */
  @Property({ type: ArrayType })
  exceptionTypes!: ExceptionType[];

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  updatedAt: Opt<Date> = new Date();
}
