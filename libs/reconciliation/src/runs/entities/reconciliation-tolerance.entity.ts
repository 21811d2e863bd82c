import { Entity, Enum, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { CHECK_KEYS, TOLERANCE_MODES, type CheckKey, type ToleranceMode } from '../../checks/tolerance';

/** An organization's tolerance for one check; absent → the defaults (checks/tolerance.ts). */
@Entity({ tableName: 'reconciliation_tolerances' })
@Unique({ properties: ['organizationId', 'checkKey'] })
export class ReconciliationTolerance extends TenantEntity {
  @Enum({ items: [...CHECK_KEYS] })
  checkKey!: CheckKey;

  /** In the item's unit (money: major units of its currency). */
  @Property({ type: 'numeric', nullable: true })
  absolute?: string | null;

  /** A percentage of |expected| (25 = 25 %). */
  @Property({ type: 'numeric', nullable: true })
  percent?: string | null;

  @Enum({ items: [...TOLERANCE_MODES], default: 'both' })
  mode: ToleranceMode = 'both';

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  updatedAt: Date = new Date();
}
