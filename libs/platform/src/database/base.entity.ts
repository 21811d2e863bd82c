import { randomUUID } from 'node:crypto';
import { PrimaryKey, Property, type Opt } from '@mikro-orm/core';

/** Every row has a UUID chosen by the application (so a retry can reuse it) and a creation time. */
export abstract class BaseEntity {
  @PrimaryKey({ type: 'uuid' })
  id: string = randomUUID();

  @Property({ type: 'timestamptz', defaultRaw: 'now()' })
  createdAt: Opt<Date> = new Date();
}

/** A row owned by one organization; services always filter by it, so other tenants read as 404. */
export abstract class TenantEntity extends BaseEntity {
  @Property({ type: 'uuid', index: true })
  organizationId!: string;
}
