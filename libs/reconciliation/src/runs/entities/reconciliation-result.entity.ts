import { Entity, Enum, Index, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

export const RESULT_STATUSES = ['pass', 'fail', 'warn'] as const;

/**
 * One compared item of one check in one run (SPEC §6): expected, actual, variance (= actual −
 * expected), the tolerance applied and the status. Append-only per run: a run is a snapshot, and
 * a retried check writes nothing twice (unique (run, check, item)). Written set-based by the checks.
 */
@Entity({ tableName: 'reconciliation_results' })
@Unique({ properties: ['runId', 'checkKey', 'itemKey'] })
@Index({ properties: ['runId', 'checkKey', 'status'] })
export class ReconciliationResult extends TenantEntity {
  @Property({ type: 'uuid' })
  runId!: string;

  @Property({ type: 'text' })
  period!: string;

  @Property({ type: 'text' })
  checkKey!: string;

  @Property({ type: 'text' })
  itemKey!: string;

  @Property({ type: 'text' })
  itemType!: string;

  @Property({ type: 'numeric', nullable: true })
  expected?: string | null;

  @Property({ type: 'numeric', nullable: true })
  actual?: string | null;

  @Property({ type: 'numeric', nullable: true })
  variance?: string | null;

  @Property({ type: 'jsonb' })
  tolerance!: Record<string, unknown>;

  @Enum({ items: [...RESULT_STATUSES] })
  status!: 'pass' | 'fail' | 'warn';

  @Property({ type: 'text', nullable: true })
  currency?: string | null;

  @Property({ type: 'jsonb' })
  details: Record<string, unknown> = {};

  /** `{invoice_id?, invoice_line_id?, subscription_id?, customer_id?, rollup_id?, entry_id?}`. */
  @Property({ type: 'jsonb' })
  refs: Record<string, unknown> = {};
}
