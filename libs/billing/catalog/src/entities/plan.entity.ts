import { Entity, Enum, Property, Unique, type Opt } from '@mikro-orm/core';
import { PRORATION_STRATEGIES, TenantEntity, type ProrationStrategy } from '@closebook/platform';

export const PLAN_INTERVALS = ['month', 'year'] as const;
export type PlanIntervalName = (typeof PLAN_INTERVALS)[number];

/** A plan: the stable identity (key, currency, fee interval) its immutable versions price. */
@Entity({ tableName: 'plans' })
@Unique({ properties: ['organizationId', 'key'] })
export class Plan extends TenantEntity {
  @Property({ type: 'text' })
  key!: string;

  @Property({ type: 'text' })
  name!: string;

  /** ISO 4217 code; every price of every version is in it. */
  @Property({ type: 'text' })
  currency!: string;

  @Enum({ items: [...PLAN_INTERVALS] })
  interval!: PlanIntervalName;

  @Property({ type: 'boolean', default: false })
  allowanceRolloverDefault: Opt<boolean> = false;

  /** Null: the organization's strategy applies. */
  @Enum({ items: [...PRORATION_STRATEGIES], nullable: true })
  prorationStrategy?: ProrationStrategy | null;
}
