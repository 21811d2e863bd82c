import { BigIntType, Check, Entity, Index, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

/**
 * An amount billed in advance and recognized month by month over its service period
 * [serviceStart, serviceEnd) from `fromAccount` (Deferred revenue) to `toAccount` (a revenue
 * account). Immutable; the recognition run posts `recognition:{id}:{YYYY-MM}` entries.
 */
@Entity({ tableName: 'deferral_schedules' })
@Unique({ properties: ['organizationId', 'key'] })
@Index({ properties: ['organizationId', 'sourceType', 'sourceId'] })
@Index({ properties: ['organizationId', 'serviceStart'] })
@Check({ name: 'deferral_schedules_total_minor_check', expression: 'total_minor > 0' })
@Check({ name: 'deferral_schedules_service_period_check', expression: 'service_end > service_start' })
export class DeferralSchedule extends TenantEntity {
  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'text' })
  key!: string;

  @Property({ type: 'text' })
  sourceType!: string;

  @Property({ type: 'text' })
  sourceId!: string;

  @Property({ type: 'text' })
  description!: string;

  @Property({ type: new BigIntType('bigint') })
  totalMinor!: bigint;

  /** First day of service (inclusive). */
  @Property({ type: 'date' })
  serviceStart!: string;

  /** Day after the last day of service (exclusive), like a billing period's end. */
  @Property({ type: 'date' })
  serviceEnd!: string;

  @Property({ type: 'text' })
  fromAccount!: string;

  @Property({ type: 'text' })
  toAccount!: string;

  @Property({ type: 'uuid', nullable: true })
  partyId?: string | null;

  /**
   * The day the deferred amount was booked (an invoice's finalization day), when given: no share is
   * recognized before it — a month that ended earlier catches up on this day instead of being backdated.
   */
  @Property({ type: 'date', nullable: true })
  recognizeFrom?: string | null;

  /** The last month with a non-zero share: once its entry exists the schedule is fully recognized. */
  @Property({ type: 'text' })
  finalPeriod!: string;
}
