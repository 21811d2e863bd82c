import { BigIntType, Check, Entity, Index, ManyToOne, Property, Unique, type Rel } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import type { JournalEntry } from './journal-entry.entity';
import { LedgerAccount } from './ledger-account.entity';

/** One side of a journal entry, in integer minor units of the entry's currency. Immutable. */
@Entity({ tableName: 'journal_lines' })
@Unique({ properties: ['entry', 'lineNo'] })
@Index({ properties: ['account', 'partyId'] })
@Check({ name: 'journal_lines_amounts_check', expression: 'debit >= 0 and credit >= 0 and (debit > 0) <> (credit > 0)' })
export class JournalLine extends TenantEntity {
  @ManyToOne({ entity: 'JournalEntry', deleteRule: 'restrict' })
  entry!: Rel<JournalEntry>;

  @Property({ type: 'integer' })
  lineNo!: number;

  @ManyToOne({ entity: () => LedgerAccount, deleteRule: 'restrict' })
  account!: Rel<LedgerAccount>;

  /** The customer the line concerns: required on Accounts receivable (the per-customer sub-ledger). */
  @Property({ type: 'uuid', nullable: true })
  partyId?: string | null;

  @Property({ type: new BigIntType('bigint') })
  debit!: bigint;

  @Property({ type: new BigIntType('bigint') })
  credit!: bigint;

  @Property({ type: 'text', nullable: true })
  memo?: string | null;
}
