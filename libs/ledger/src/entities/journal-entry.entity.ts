import { Check, Collection, Entity, Index, ManyToOne, OneToMany, Property, Unique, type Rel } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { JournalLine } from './journal-line.entity';

/**
 * A posted journal entry: immutable (a trigger refuses UPDATE and DELETE), balanced (a deferred
 * constraint trigger checks debits = credits and at least two lines at commit), dated outside any
 * closed month (a trigger checks the period lock). Written through LedgerService, in SQL.
 */
@Entity({ tableName: 'journal_entries' })
@Unique({ properties: ['organizationId', 'key'] })
@Unique({ properties: ['reversesEntry'] })
@Index({ properties: ['organizationId', 'entryDate'] })
@Index({ properties: ['organizationId', 'sourceType', 'sourceId'] })
@Index({ properties: ['organizationId', 'createdAt'] })
@Check({ name: 'journal_entries_corrects_period_check', expression: `corrects_period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'` })
export class JournalEntry extends TenantEntity {
  @Property({ type: 'text' })
  currency!: string;

  /** The accounting date (`YYYY-MM-DD`); its month is the entry's period. */
  @Property({ type: 'date' })
  entryDate!: string;

  /** Unique per organization: the idempotency key of the posting (`invoice:{id}`, `recognition:{schedule}:{YYYY-MM}`). */
  @Property({ type: 'text' })
  key!: string;

  @Property({ type: 'text' })
  sourceType!: string;

  @Property({ type: 'text' })
  sourceId!: string;

  @Property({ type: 'text' })
  description!: string;

  /** A reversing entry names the entry it reverses (at most one reversal per entry). */
  @ManyToOne({ entity: () => JournalEntry, nullable: true, deleteRule: 'restrict' })
  reversesEntry?: Rel<JournalEntry> | null;

  /** `YYYY-MM` of the closed month this entry corrects (it is dated in the first open month after it). */
  @Property({ type: 'text', nullable: true })
  correctsPeriod?: string | null;

  @OneToMany({ entity: () => JournalLine, mappedBy: 'entry' })
  lines = new Collection<JournalLine>(this);
}
