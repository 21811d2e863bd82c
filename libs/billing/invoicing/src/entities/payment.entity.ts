import { Entity, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Customer } from '@closebook/subscriptions';
import { Invoice } from './invoice.entity';

/** A payment received against an invoice (SPEC §4). Immutable (a trigger refuses UPDATE and DELETE). */
@Entity({ tableName: 'payments' })
@Unique({ properties: ['invoiceId', 'reference'] })
@Index({ properties: ['organizationId', 'createdAt'] })
export class Payment extends TenantEntity {
  @ManyToOne({ entity: () => Invoice, fieldName: 'invoice_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  invoiceId!: string;

  @ManyToOne({ entity: () => Customer, fieldName: 'customer_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  customerId!: string;

  /** Positive, in the invoice's currency, rounded to its minor unit. */
  @Property({ type: 'decimal', columnType: 'numeric' })
  amount!: string;

  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'timestamptz' })
  receivedAt!: Date;

  /** The bank or processor reference; unique per invoice. */
  @Property({ type: 'text' })
  reference!: string;
}
