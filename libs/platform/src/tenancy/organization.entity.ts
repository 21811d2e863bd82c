import { Entity, Enum, Property, type Opt } from '@mikro-orm/core';
import { BaseEntity } from '../database/base.entity';

export const PRORATION_STRATEGIES = [
  'prorated_immediately',
  'prorated_next_invoice',
  'difference_immediately',
  'full_immediately',
] as const;
export type ProrationStrategy = (typeof PRORATION_STRATEGIES)[number];

@Entity({ tableName: 'organizations' })
export class Organization extends BaseEntity {
  @Property({ type: 'text' })
  name!: string;

  /** Minutes a period invoice stays draft before the scheduler finalizes it. */
  @Property({ type: 'integer' })
  draftWindowMinutes!: number;

  @Enum({ items: [...PRORATION_STRATEGIES], default: 'prorated_immediately' })
  prorationStrategy: Opt<ProrationStrategy> = 'prorated_immediately';
}
