import { Entity, Enum, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Subscription } from '@closebook/subscriptions';
import type { AllowanceGrant } from '@closebook/rating';
import { Invoice } from './invoice.entity';

export const GRANT_KINDS = ['period', 'rollover'] as const;
export type GrantKindName = (typeof GRANT_KINDS)[number];

/**
 * The allowance ledger (SPEC §2 rollover): every bucket a period rating granted — the period's own
 * allowance and the units carried out of it — with the rating core's `AllowanceGrant` as `grant`.
 * Drawdowns and expiries below replay any bucket: quantity − Σ drawn − carried − expired = 0 once
 * it lapses. Rows belong to the period invoice that rated them (re-rated with its draft, frozen
 * with it).
 */
@Entity({ tableName: 'allowance_grants' })
@Unique({ properties: ['subscriptionId', 'grantId'] })
@Index({ properties: ['subscriptionId', 'productKey', 'grantedInPeriod'] })
export class AllowanceGrantRecord extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  subscriptionId!: string;

  @ManyToOne({ entity: () => Invoice, fieldName: 'invoice_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  invoiceId!: string;

  @Property({ type: 'text' })
  grantId!: string;

  @Enum({ items: [...GRANT_KINDS] })
  kind!: GrantKindName;

  @Property({ type: 'text' })
  productKey!: string;

  @Property({ type: 'text', nullable: true })
  priceKey?: string | null;

  @Property({ type: 'decimal', columnType: 'numeric' })
  quantity!: string;

  /** Start of the first period the grant can be drawn in. */
  @Property({ type: 'timestamptz' })
  grantedInPeriod!: Date;

  /** Start of the last period it can be drawn in. */
  @Property({ type: 'timestamptz' })
  expiresAfterPeriod!: Date;

  @Property({ type: 'timestamptz', nullable: true })
  carriedFromPeriod?: Date | null;

  /** The rating core's grant, as granted (drawn_before absent). */
  @Property({ type: 'jsonb', fieldName: 'grant' })
  grant!: AllowanceGrant;
}

/** Usage of period `period_start` drawn from a grant (rollover grants first, oldest first). */
@Entity({ tableName: 'allowance_drawdowns' })
@Index({ properties: ['subscriptionId', 'grantId', 'periodStart'] })
export class AllowanceDrawdownRecord extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  subscriptionId!: string;

  @ManyToOne({ entity: () => Invoice, fieldName: 'invoice_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  invoiceId!: string;

  @Property({ type: 'text' })
  grantId!: string;

  @Property({ type: 'timestamptz' })
  periodStart!: Date;

  @Property({ type: 'text' })
  productKey!: string;

  @Property({ type: 'text', nullable: true })
  priceKey?: string | null;

  @Property({ type: 'decimal', columnType: 'numeric' })
  drawn!: string;
}

/** A grant lapsing at the end of period `period_start`: its unused units, carried (own allowance) or expired. */
@Entity({ tableName: 'allowance_expiries' })
@Index({ properties: ['subscriptionId', 'grantId'] })
export class AllowanceExpiryRecord extends TenantEntity {
  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  subscriptionId!: string;

  @ManyToOne({ entity: () => Invoice, fieldName: 'invoice_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  invoiceId!: string;

  @Property({ type: 'text' })
  grantId!: string;

  @Enum({ items: [...GRANT_KINDS] })
  kind!: GrantKindName;

  @Property({ type: 'timestamptz' })
  periodStart!: Date;

  @Property({ type: 'text' })
  productKey!: string;

  @Property({ type: 'text', nullable: true })
  priceKey?: string | null;

  @Property({ type: 'decimal', columnType: 'numeric' })
  unused!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  carried!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  expired!: string;

  @Property({ type: 'text', nullable: true })
  carriedTo?: string | null;
}
