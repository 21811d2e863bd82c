import { Entity, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

/** Per-organization counters for document numbers (`invoice`, `credit_note`), advanced with an upsert. */
@Entity({ tableName: 'document_sequences' })
@Unique({ properties: ['organizationId', 'kind'] })
export class DocumentSequence extends TenantEntity {
  @Property({ type: 'text' })
  kind!: string;

  @Property({ type: 'integer' })
  last!: number;
}
