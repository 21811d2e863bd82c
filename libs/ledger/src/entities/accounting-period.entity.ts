import { Check, Entity, Enum, Property, Unique, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

export const PERIOD_STATUSES = ['open', 'closing', 'closed'] as const;
export type PeriodStatus = (typeof PERIOD_STATUSES)[number];

/**
 * The state of one month of one organization. A month without a row is open. Rows are never
 * deleted (a trigger refuses it): deleting a closed month's row would unlock it.
 */
@Entity({ tableName: 'accounting_periods' })
@Unique({ properties: ['organizationId', 'period'] })
@Check({ name: 'accounting_periods_period_check', expression: `period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'` })
export class AccountingPeriod extends TenantEntity {
  /** `YYYY-MM`. */
  @Property({ type: 'text' })
  period!: string;

  @Enum({ items: [...PERIOD_STATUSES], default: 'open' })
  status: Opt<PeriodStatus> = 'open';

  @Property({ type: 'timestamptz', nullable: true })
  closingStartedAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  closedAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  reopenedAt?: Date | null;

  @Property({ type: 'text', nullable: true })
  reopenReason?: string | null;

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  updatedAt: Opt<Date> = new Date();
}
