import { Entity, Enum, Property, Unique, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { ACCOUNT_TYPES, NORMAL_BALANCES, type AccountType, type NormalBalance } from '../chart';

/** One account of an organization's chart in one currency; created by `ensureChart`. */
@Entity({ tableName: 'ledger_accounts' })
@Unique({ properties: ['organizationId', 'currency', 'code'] })
export class LedgerAccount extends TenantEntity {
  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'text' })
  code!: string;

  @Property({ type: 'text' })
  name!: string;

  @Enum({ items: [...ACCOUNT_TYPES] })
  type!: AccountType;

  @Enum({ items: [...NORMAL_BALANCES] })
  normalBalance!: NormalBalance;

  /** Lines on this account must carry a party_id (the per-customer sub-ledger of a control account). */
  @Property({ type: 'boolean', default: false })
  requiresParty: Opt<boolean> = false;
}
