import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Invoice } from './entities/invoice.entity';
import type { InvoiceLine } from './entities/invoice-line.entity';
import type { CreditNote, CreditNoteLine } from './entities/credit-note.entity';
import type { Payment } from './entities/payment.entity';

/**
 * Extension points inside invoicing's transactions, for the posting rules (ledger entries written
 * in the same transaction as the document they record). A hook that throws rolls the whole change
 * back: the document and its entries commit together or not at all.
 */
export interface InvoicingPostingHook {
  /** A draft became finalized (once per invoice). */
  invoiceFinalized?(tx: EntityManager, invoice: Invoice, lines: InvoiceLine[]): Promise<void>;
  creditNoteCreated?(tx: EntityManager, creditNote: CreditNote, lines: CreditNoteLine[], invoice: Invoice): Promise<void>;
  paymentRecorded?(tx: EntityManager, payment: Payment, invoice: Invoice): Promise<void>;
}

@Injectable()
export class InvoicingEvents {
  private readonly hooks: InvoicingPostingHook[] = [];

  register(hook: InvoicingPostingHook): void {
    if (!this.hooks.includes(hook)) this.hooks.push(hook);
  }

  async invoiceFinalized(tx: EntityManager, invoice: Invoice, lines: InvoiceLine[]): Promise<void> {
    for (const h of this.hooks) if (h.invoiceFinalized) await h.invoiceFinalized(tx, invoice, lines);
  }

  async creditNoteCreated(tx: EntityManager, note: CreditNote, lines: CreditNoteLine[], invoice: Invoice): Promise<void> {
    for (const h of this.hooks) if (h.creditNoteCreated) await h.creditNoteCreated(tx, note, lines, invoice);
  }

  async paymentRecorded(tx: EntityManager, payment: Payment, invoice: Invoice): Promise<void> {
    for (const h of this.hooks) if (h.paymentRecorded) await h.paymentRecorded(tx, payment, invoice);
  }
}
