import { Entity, Index, ManyToOne, Property, Unique } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';
import { Customer } from '@closebook/subscriptions';
import { Invoice } from './invoice.entity';
import { InvoiceLine } from './invoice-line.entity';

/**
 * A credit note against a finalized invoice (SPEC §4): the correction of an invoice that never
 * changes. Amounts are positive (what is credited); its lines say which invoice lines, by how much.
 * Immutable (a trigger refuses UPDATE and DELETE).
 */
@Entity({ tableName: 'credit_notes' })
@Unique({ properties: ['organizationId', 'number'] })
@Index({ properties: ['invoiceId'] })
export class CreditNote extends TenantEntity {
  @ManyToOne({ entity: () => Invoice, fieldName: 'invoice_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict' })
  invoiceId!: string;

  @ManyToOne({ entity: () => Customer, fieldName: 'customer_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  customerId!: string;

  /** CN-000001, sequential per organization. */
  @Property({ type: 'text' })
  number!: string;

  @Property({ type: 'text' })
  reason!: string;

  @Property({ type: 'text' })
  currency!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  subtotal!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  taxAmount!: string;

  @Property({ type: 'decimal', columnType: 'numeric' })
  total!: string;
}

@Entity({ tableName: 'credit_note_lines' })
export class CreditNoteLine extends TenantEntity {
  @ManyToOne({ entity: () => CreditNote, fieldName: 'credit_note_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  creditNoteId!: string;

  @ManyToOne({ entity: () => InvoiceLine, fieldName: 'invoice_line_id', mapToPk: true, deleteRule: 'restrict', updateRule: 'restrict', index: true })
  invoiceLineId!: string;

  /** When credited by quantity: the quantity (the amount is that share of the line's amount). */
  @Property({ type: 'decimal', columnType: 'numeric', nullable: true })
  quantity?: string | null;

  /** Positive, rounded to the minor unit. */
  @Property({ type: 'decimal', columnType: 'numeric' })
  amount!: string;

  @Property({ type: 'text' })
  description!: string;
}
