import { Entity, Enum, Index, Property } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

export const RUN_STATUSES = ['queued', 'running', 'passed', 'failed', 'error'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * One reconciliation run of a month (SPEC §6): the checks it ran and its capture — the inputs each
 * check read, the tolerances in force, each check's summary and a hash of its results — with
 * `capture_hash`, the SHA-256 of the canonical capture, so the run can be shown as it was.
 */
@Entity({ tableName: 'reconciliation_runs' })
@Index({ properties: ['organizationId', 'period', 'createdAt'] })
export class ReconciliationRun extends TenantEntity {
  @Property({ type: 'text' })
  period!: string;

  @Enum({ items: [...RUN_STATUSES], default: 'queued' })
  status: RunStatus = 'queued';

  @Property({ type: 'text' })
  startedBy!: string;

  @Property({ type: 'timestamptz', nullable: true })
  startedAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  finishedAt?: Date | null;

  /** The check keys requested, in run order. */
  @Property({ type: 'jsonb' })
  checks!: string[];

  /** `{version, organization_id, period, run_id, checks_requested, tolerances, checks: {key: summary}}`. */
  @Property({ type: 'jsonb' })
  capture: Record<string, unknown> = {};

  @Property({ type: 'text', nullable: true })
  captureHash?: string | null;

  /** Per check, the fingerprint of the inputs it read (`CheckFingerprints`). */
  @Property({ type: 'jsonb' })
  inputsFingerprint: Record<string, string> = {};

  @Property({ type: 'text', nullable: true })
  error?: string | null;
}
