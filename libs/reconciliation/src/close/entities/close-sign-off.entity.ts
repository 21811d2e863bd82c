import { Entity, Index, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

/**
 * A sign-off of a month's close (SPEC §6): one step (`preparer`, `reviewer`, …) by one signer, over
 * the data its checks saw — the fingerprint of every check when it was given. When the data under a
 * check changes, the sign-off is withdrawn (withdrawn_at, reason) and must be given again. Rows are
 * never deleted: withdrawn sign-offs stay as history.
 */
@Entity({ tableName: 'close_sign_offs' })
@Index({ properties: ['organizationId', 'period'] })
@Unique({
  name: 'close_sign_offs_one_active_step',
  expression: `create unique index "close_sign_offs_one_active_step" on "close_sign_offs" ("organization_id", "period", "step") where "withdrawn_at" is null`,
})
export class CloseSignOff extends TenantEntity {
  @Property({ type: 'text' })
  period!: string;

  @Property({ type: 'text' })
  step!: string;

  /** The API key that signed (null from the CLI). */
  @Property({ type: 'uuid', nullable: true })
  signerKeyId?: string | null;

  /** Who signed: the key's actor label, or `cli:{name}`. Two steps need two signers. */
  @Property({ type: 'text' })
  signer!: string;

  @Property({ type: 'text' })
  signerRole!: string;

  @Property({ type: 'text', nullable: true })
  note?: string | null;

  /** check key → fingerprint at signing. */
  @Property({ type: 'jsonb' })
  fingerprints!: Record<string, string>;

  /** check key → the run whose results were signed. */
  @Property({ type: 'jsonb' })
  runs!: Record<string, string>;

  @Property({ type: 'timestamptz', nullable: true })
  withdrawnAt?: Date | null;

  @Property({ type: 'text', nullable: true })
  withdrawnReason?: string | null;
}
