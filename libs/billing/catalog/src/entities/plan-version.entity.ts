import { Entity, Enum, ManyToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import type { RatingPlanVersion } from '@closebook/rating';
import { Plan } from './plan.entity';

export const PLAN_VERSION_STATUSES = ['draft', 'published'] as const;
export type PlanVersionStatus = (typeof PLAN_VERSION_STATUSES)[number];

/**
 * One version of a plan. `document` is the complete RatingPlanVersion that rating and allowance
 * state read. A published version is frozen: a trigger rejects UPDATE and DELETE of it and any
 * change to its plan_version_products.
 */
@Entity({ tableName: 'plan_versions' })
@Unique({ properties: ['planId', 'version'] })
export class PlanVersion extends TenantEntity {
  @ManyToOne({ entity: () => Plan, fieldName: 'plan_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  planId!: string;

  @Property({ type: 'integer' })
  version!: number;

  @Enum({ items: [...PLAN_VERSION_STATUSES] })
  status!: PlanVersionStatus;

  @Property({ type: 'timestamptz', nullable: true })
  publishedAt?: Date | null;

  @Property({ type: 'decimal', columnType: 'numeric', default: 1 })
  allowanceMultiplier: Opt<string> = '1';

  @Property({ type: 'jsonb' })
  document!: RatingPlanVersion;
}
