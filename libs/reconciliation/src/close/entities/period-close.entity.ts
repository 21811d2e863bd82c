import { Entity, Index, Property } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import type { RequiredSignOff } from './close-settings.entity';

/** A sign-off as a close recorded it. */
export interface ClosedSignOff {
  id: string;
  step: string;
  signer: string;
  signer_role: string;
  note: string | null;
  signed_at: string;
  runs: Record<string, string>;
}

/** A check as a close recorded it: the run and result it closed on. */
export interface ClosedCheck {
  check: string;
  status: string | null;
  run_id: string | null;
  finished_at: string | null;
  failed: number;
  population: { count: number; unit: string; documents: number; reason?: string } | null;
  fingerprint: string | null;
}

/**
 * The close of a month as it happened (SPEC §6): who closed it and when, with the sign-offs, the
 * check runs and results and the exception counts it closed on. Written once, in the transaction
 * that locks the ledger month; a trigger refuses every update and delete, so a closed month's
 * status reads the same whatever happens later (docs/close.md "A closed month is frozen").
 */
@Entity({ tableName: 'period_closes' })
@Index({ properties: ['organizationId', 'period'] })
export class PeriodClose extends TenantEntity {
  @Property({ type: 'text' })
  period!: string;

  @Property({ type: 'timestamptz' })
  closedAt!: Date;

  /** Who closed it: the person's label (key name, or `cli:{name}`). */
  @Property({ type: 'text' })
  closedBy!: string;

  @Property({ type: 'uuid', nullable: true })
  closedByKeyId?: string | null;

  @Property({ type: 'jsonb' })
  requiredSignOffs!: RequiredSignOff[];

  @Property({ type: 'jsonb' })
  signOffs!: ClosedSignOff[];

  @Property({ type: 'jsonb' })
  checks!: ClosedCheck[];

  @Property({ type: 'jsonb' })
  exceptions!: { open: number; assigned: number; escalated: number };
}
