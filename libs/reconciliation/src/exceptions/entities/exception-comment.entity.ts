import { Entity, ManyToOne, Property } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { ReconciliationException } from './exception.entity';

/** A comment on an exception (append-only in practice: there is no route to change one). */
@Entity({ tableName: 'exception_comments' })
export class ExceptionComment extends TenantEntity {
  @ManyToOne({ entity: () => ReconciliationException, fieldName: 'exception_id', mapToPk: true, deleteRule: 'cascade', updateRule: 'restrict', index: true })
  exceptionId!: string;

  /** The API key that wrote it (null for the system). */
  @Property({ type: 'uuid', nullable: true })
  authorKeyId?: string | null;

  /** `key:<prefix>` or a system actor, as in the audit log. */
  @Property({ type: 'text' })
  author!: string;

  @Property({ type: 'text' })
  body!: string;
}
