import { Check, Entity, Enum, Index, ManyToOne, Property, Unique, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { BillingPeriod, Customer, Subscription } from '@closebook/subscriptions';
import type { AllowanceState, PeriodInvoiceInput, TaxLine } from '@closebook/rating';

export const INVOICE_KINDS = ['opening', 'period', 'transition'] as const;
export type InvoiceKind = (typeof INVOICE_KINDS)[number];

export const INVOICE_STATUSES = ['draft', 'finalized', 'paid', 'void'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

/** What a period invoice was rated from, kept so a re-rating or a late-usage valuation uses the same inputs. */
export type StoredRatingInput = Omit<PeriodInvoiceInput, 'usage'>;

/**
 * An invoice of a subscription (SPEC §4): `opening` (the first period's flat fees), `period` (P's
 * usage in arrears + P+1's flat fees in advance + deferred lines, charges, adjustments, credits) or
 * `transition` (an immediate proration invoice). Amounts are exact decimals in `currency`, rounded
 * to its minor unit (`subtotal` = Σ lines, `tax_amount` = tax line, `total` = subtotal + tax).
 *
 * Database invariants: one period invoice per (subscription, billing period) and one opening invoice
 * per subscription (partial unique indexes); `source_key` is the business key a retried job or
 * request finds it by. A trigger refuses any UPDATE or DELETE of a non-draft invoice except the
 * status moves finalized → paid | void (with paid_at / voided_at), and refuses writes to the lines,
 * rollup links and allowance-ledger rows of a non-draft invoice.
 */
@Entity({ tableName: 'invoices' })
@Unique({ properties: ['organizationId', 'sourceKey'] })
@Unique({ properties: ['organizationId', 'number'] })
@Unique({
  name: 'invoices_one_period_invoice',
  expression: `create unique index "invoices_one_period_invoice" on "invoices" ("subscription_id", "billing_period_id") where "kind" = 'period'`,
})
@Unique({
  name: 'invoices_one_opening_invoice',
  expression: `create unique index "invoices_one_opening_invoice" on "invoices" ("subscription_id") where "kind" = 'opening'`,
})
@Index({ properties: ['organizationId', 'createdAt'] })
@Index({ properties: ['organizationId', 'issueDate'] })
@Index({ properties: ['subscriptionId', 'periodStart'] })
@Index({ properties: ['status', 'finalizeAfter'] })
@Check({ name: 'invoices_period_has_billing_period_check', expression: `kind <> 'period' or billing_period_id is not null` })
@Check({ name: 'invoices_period_bounds_check', expression: 'period_end > period_start' })
export class Invoice extends TenantEntity {
  @ManyToOne({ entity: () => Customer, fieldName: 'customer_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  customerId!: string;

  @ManyToOne({ entity: () => Subscription, fieldName: 'subscription_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  subscriptionId!: string;

  @Enum({ items: [...INVOICE_KINDS] })
  kind!: InvoiceKind;

  /** The billing period P (period invoices), the first period (opening) or the period of the change (transition). */
  @ManyToOne({ entity: () => BillingPeriod, fieldName: 'billing_period_id', mapToPk: true, nullable: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  billingPeriodId?: string | null;

  /** `opening:{subscription}`, `period:{billing period}`, `transition:{subscription change}`. */
  @Property({ type: 'text' })
  sourceKey!: string;

  /** The invoice's own period (period: P; opening: the first period; transition: the cycle of the change). */
  @Property({ type: 'timestamptz' })
  periodStart!: Date;

  @Property({ type: 'timestamptz' })
  periodEnd!: Date;

  /**
   * The accounting date (`YYYY-MM-DD`) the invoice posts on, fixed when it is first rated and never
   * the day the code ran: the last day of its period (period), the subscription's start day
   * (opening), the change's effective day (transition). See `accounting-dates.ts`.
   */
  @Property({ type: 'date' })
  issueDate!: string;

  @Enum({ items: [...INVOICE_STATUSES], default: 'draft' })
  status: Opt<InvoiceStatus> = 'draft';

  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  subtotal!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  taxAmount!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  total!: string;

  /** The customer's tax rate applied (null: no tax line). */
  @Property({ type: 'decimal', columnType: 'numeric', nullable: true })
  taxRate?: string | null;

  /** The rating core's tax line (rate, taxable amount, steps), or null. */
  @Property({ type: 'jsonb', nullable: true })
  taxLine?: TaxLine | null;

  /** Assigned at finalization, sequential per organization (INV-000001). */
  @Property({ type: 'text', nullable: true })
  number?: string | null;

  /** End of the draft window: the scheduler finalizes the draft after this instant. */
  @Property({ type: 'timestamptz' })
  finalizeAfter!: Date;

  @Property({ type: 'timestamptz', nullable: true })
  finalizedAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  dueAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  paidAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  voidedAt?: Date | null;

  /** SHA-256 of the canonical invoice content (lines, totals): what was finalized can be shown unchanged. */
  @Property({ type: 'text' })
  contentHash!: string;

  @Property({ type: 'timestamptz' })
  ratedAt!: Date;

  /** 1 when first rated; +1 per re-rating of the draft (late events). */
  @Property({ type: 'integer', default: 1 })
  ratingCount: Opt<number> = 1;

  /** Period invoices: the rating input (segments, grants, charges, deferred lines…) without usage. */
  @Property({ type: 'jsonb', nullable: true })
  ratingInput?: StoredRatingInput | null;

  /** Period invoices: the allowance state of every dimension at rating. */
  @Property({ type: 'jsonb', nullable: true })
  allowance?: AllowanceState[] | null;
}
