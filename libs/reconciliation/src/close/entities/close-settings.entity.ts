import { Entity, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

export interface RequiredSignOff {
  /** The step's name (`preparer`, `reviewer`, `controller`…). */
  step: string;
  /** Key roles allowed to give it (admin always is). */
  roles: string[];
}

/** The organization's close rules: the sign-offs a month needs, in order. Absent: the defaults. */
@Entity({ tableName: 'close_settings' })
@Unique({ properties: ['organizationId'] })
export class CloseSettings extends TenantEntity {
  @Property({ type: 'jsonb' })
  requiredSignOffs!: RequiredSignOff[];

  @Property({ type: 'timestamptz', nullable: true })
  updatedAt?: Date | null;
}
