import { Injectable, OnModuleInit } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Money } from '@closebook/money';
import { LedgerService, RevenueRecognitionService, toDate } from '@closebook/ledger';
import { InvoicingEvents, type InvoicingPostingHook } from '../invoicing-events';
import type { Invoice } from '../entities/invoice.entity';
import type { InvoiceLine } from '../entities/invoice-line.entity';
import { CreditNote, type CreditNoteLine } from '../entities/credit-note.entity';
import { Payment } from '../entities/payment.entity';
import { balanceOf } from '../invoices.service';
import { creditNotePosting, invoicePosting, paymentPosting } from './posting-rules';
import { usageAccrualLock } from './usage-accrual.service';

/** Ledger keys of the documents (docs/ledger.md): one entry per document, so a retried hook posts once. */
export const invoiceEntryKey = (invoiceId: string) => `invoice:${invoiceId}`;
export const creditNoteEntryKey = (noteId: string) => `credit_note:${noteId}`;
export const paymentEntryKey = (paymentId: string) => `payment:${paymentId}`;
export const deferralKey = (lineId: string) => `invoice_line:${lineId}`;

/**
 * Writes the posting rules' entries inside invoicing's transactions: the document and its entries
 * commit together or not at all, so a finalized invoice is never left unposted (SPEC §5).
 */
@Injectable()
export class LedgerPostingHook implements InvoicingPostingHook, OnModuleInit {
  constructor(
    private readonly events: InvoicingEvents,
    private readonly ledger: LedgerService,
    private readonly recognition: RevenueRecognitionService,
  ) {}

  onModuleInit(): void {
    this.events.register(this);
  }

  async invoiceFinalized(tx: EntityManager, invoice: Invoice, lines: InvoiceLine[]): Promise<void> {
    const date = toDate(invoice.finalizedAt ?? new Date(), 'finalized_at');
    const posting = invoicePosting(invoice, lines);
    // A zero invoice moves no money: nothing to post (the ledger refuses an entry without two lines).
    if (posting.lines.length >= 2) {
      await this.ledger.post(tx, {
        organizationId: invoice.organizationId,
        currency: invoice.currency,
        date,
        key: invoiceEntryKey(invoice.id),
        source: { type: 'invoice', id: invoice.id },
        description: `Invoice ${invoice.number ?? invoice.id}`,
        lines: posting.lines,
      });
    }
    for (const d of posting.deferrals) {
      await this.recognition.createSchedule(tx, {
        organizationId: invoice.organizationId,
        key: deferralKey(d.lineId),
        source: { type: 'invoice_line', id: d.lineId },
        total: d.amount,
        serviceStart: d.serviceStart,
        serviceEnd: d.serviceEnd,
        toAccount: d.toAccount,
        partyId: invoice.customerId,
        recognizeFrom: date,
        description: `Invoice ${invoice.number ?? invoice.id}: ${lines.find((l) => l.id === d.lineId)?.description ?? d.lineId}`.slice(0, 1000),
      });
    }
    // The usage of this period accrued at earlier month ends is now billed: reverse those accruals.
    if (invoice.kind === 'period' && invoice.billingPeriodId) {
      await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [usageAccrualLock(invoice.billingPeriodId)]);
      const accruals = await tx.execute<{ key: string }[]>(
        `select substr(key, 9) as key from journal_entries
         where organization_id = ? and key like ? and source_type = 'billing_period' and source_id = ?`,
        [invoice.organizationId, `accrual:usage:${invoice.billingPeriodId}:%`, invoice.billingPeriodId],
      );
      for (const a of accruals) {
        await this.ledger.reverseAccrual(tx, { organizationId: invoice.organizationId, key: a.key, date, reason: `usage invoiced on ${invoice.number ?? invoice.id}` });
      }
    }
  }

  async creditNoteCreated(tx: EntityManager, note: CreditNote, _lines: CreditNoteLine[], invoice: Invoice): Promise<void> {
    const [notes, payments] = await Promise.all([tx.find(CreditNote, { invoiceId: invoice.id, id: { $ne: note.id } }), tx.find(Payment, { invoiceId: invoice.id })]);
    const dueBefore = Money.of(balanceOf(invoice, notes, payments).due, invoice.currency);
    await this.ledger.post(tx, {
      organizationId: note.organizationId,
      currency: note.currency,
      date: toDate(note.createdAt ?? new Date(), 'created_at'),
      key: creditNoteEntryKey(note.id),
      source: { type: 'credit_note', id: note.id },
      description: `Credit note ${note.number} on invoice ${invoice.number ?? invoice.id}`,
      lines: creditNotePosting(note, dueBefore),
    });
  }

  async paymentRecorded(tx: EntityManager, payment: Payment, invoice: Invoice): Promise<void> {
    await this.ledger.post(tx, {
      organizationId: payment.organizationId,
      currency: payment.currency,
      date: toDate(payment.receivedAt, 'received_at'),
      key: paymentEntryKey(payment.id),
      source: { type: 'payment', id: payment.id },
      description: `Payment ${payment.reference} on invoice ${invoice.number ?? invoice.id}`,
      lines: paymentPosting(payment),
    });
  }
}
