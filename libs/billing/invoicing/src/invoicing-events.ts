import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Invoice } from './entities/invoice.entity';
import type { InvoiceLine } from './entities/invoice-line.entity';
import type { CreditNote, CreditNoteLine } from './entities/credit-note.entity';
import type { Payment } from './entities/payment.entity';

/**
 * A finalized invoice's line as the hooks see it: what it bills and where, without the computation
 * that produced it (steps, tier breakdown, price model, proration, exact amount). Finalization reads
 * these columns alone: the computation is most of a line's bytes and nothing posts from it.
 */
export type FinalizedLine = Pick<
  InvoiceLine,
  'id' | 'invoiceId' | 'position' | 'lineKey' | 'type' | 'productKey' | 'priceKey' | 'periodStart' | 'periodEnd' | 'quantity' | 'amount' | 'currency' | 'description' | 'meta' | 'sourceType' | 'sourceId'
>;

/** An invoice that has just been finalized, with its lines (in position order). */
export interface FinalizedInvoice {
  invoice: Invoice;
  lines: FinalizedLine[];
}

/**
 * Extension points inside invoicing's transactions, for the posting rules (ledger entries written
 * in the same transaction as the document they record). A hook that throws rolls the whole change
 * back: the document and its entries commit together or not at all.
 */
export interface InvoicingPostingHook {
  /** A draft became finalized (once per invoice). Called per invoice when the hook has no `invoicesFinalized`. */
  invoiceFinalized?(tx: EntityManager, invoice: Invoice, lines: FinalizedLine[]): Promise<void>;
  /**
   * Drafts became finalized in one transaction (once per invoice; one invoice for a single
   * finalization): the set-based form, preferred over `invoiceFinalized` when a hook has both.
   */
  invoicesFinalized?(tx: EntityManager, finalized: readonly FinalizedInvoice[]): Promise<void>;
  creditNoteCreated?(tx: EntityManager, creditNote: CreditNote, lines: CreditNoteLine[], invoice: Invoice): Promise<void>;
  paymentRecorded?(tx: EntityManager, payment: Payment, invoice: Invoice): Promise<void>;
}

@Injectable()
export class InvoicingEvents {
  private readonly hooks: InvoicingPostingHook[] = [];

  register(hook: InvoicingPostingHook): void {
    if (!this.hooks.includes(hook)) this.hooks.push(hook);
  }

  /** Removes a registered hook (tests that register their own). */
  unregister(hook: InvoicingPostingHook): void {
    const i = this.hooks.indexOf(hook);
    if (i >= 0) this.hooks.splice(i, 1);
  }

  async invoiceFinalized(tx: EntityManager, invoice: Invoice, lines: FinalizedLine[]): Promise<void> {
    await this.invoicesFinalized(tx, [{ invoice, lines }]);
  }

  async invoicesFinalized(tx: EntityManager, finalized: readonly FinalizedInvoice[]): Promise<void> {
    if (!finalized.length) return;
    for (const h of this.hooks) {
      if (h.invoicesFinalized) await h.invoicesFinalized(tx, finalized);
      else if (h.invoiceFinalized) for (const f of finalized) await h.invoiceFinalized(tx, f.invoice, f.lines);
    }
  }

  async creditNoteCreated(tx: EntityManager, note: CreditNote, lines: CreditNoteLine[], invoice: Invoice): Promise<void> {
    for (const h of this.hooks) if (h.creditNoteCreated) await h.creditNoteCreated(tx, note, lines, invoice);
  }

  async paymentRecorded(tx: EntityManager, payment: Payment, invoice: Invoice): Promise<void> {
    for (const h of this.hooks) if (h.paymentRecorded) await h.paymentRecorded(tx, payment, invoice);
  }
}
