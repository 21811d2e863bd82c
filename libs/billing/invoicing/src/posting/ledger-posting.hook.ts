import { Injectable, OnModuleInit } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Money } from '@closebook/money';
import { lockInOrder } from '@closebook/platform';
import { LedgerService, RevenueRecognitionService, toDate, type CreateScheduleInput, type PostEntryInput } from '@closebook/ledger';
import { InvoicingEvents, type FinalizedInvoice, type FinalizedLine, type InvoicingPostingHook } from '../invoicing-events';
import type { Invoice } from '../entities/invoice.entity';
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

  async invoiceFinalized(tx: EntityManager, invoice: Invoice, lines: FinalizedLine[]): Promise<void> {
    await this.invoicesFinalized(tx, [{ invoice, lines }]);
  }

  /**
   * The entries of invoices finalized together, set-based: every invoice's entry in one `postMany`
   * (a zero invoice moves no money and posts nothing), every deferral schedule in one
   * `createSchedules`, and the usage accruals of their billing periods reversed at once. What each
   * invoice posts is `invoicePosting`'s, exactly as for one invoice (one invoice is this with one).
   */
  async invoicesFinalized(tx: EntityManager, finalized: readonly FinalizedInvoice[]): Promise<void> {
    const entries: PostEntryInput[] = [];
    const billed: { invoice: Invoice; date: string }[] = [];
    const postings = finalized.map(({ invoice, lines }) => invoicePosting(invoice, lines));
    for (const [i, { invoice }] of finalized.entries()) {
      const posting = postings[i];
      // A zero invoice moves no money: nothing to post (the ledger refuses an entry without two lines).
      if (posting.lines.length >= 2) {
        entries.push({
          organizationId: invoice.organizationId,
          currency: invoice.currency,
          // The invoice's accounting date (accounting-dates.ts), never the day it was finalized.
          date: invoice.issueDate,
          key: invoiceEntryKey(invoice.id),
          source: { type: 'invoice', id: invoice.id },
          description: `Invoice ${invoice.number ?? invoice.id}`,
          lines: posting.lines,
        });
      }
    }
    // The dates the entries landed on: the issue date, or the first open month's first day when that
    // month is closed. Deferrals recognize, and accruals reverse, from there.
    const posted = new Map((entries.length ? await this.ledger.postMany(tx, entries) : []).map((e) => [e.sourceId, e.date]));
    const schedules: CreateScheduleInput[] = [];
    for (const [i, { invoice, lines }] of finalized.entries()) {
      const date = posted.get(invoice.id) ?? invoice.issueDate;
      for (const d of postings[i].deferrals) {
        schedules.push({
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
      if (invoice.kind === 'period' && invoice.billingPeriodId) billed.push({ invoice, date });
    }
    if (schedules.length) await this.recognition.createSchedules(tx, schedules);
    if (billed.length) await this.reverseUsageAccruals(tx, billed);
  }

  /**
   * The usage of these periods accrued at earlier month ends is now billed: reverse those accruals,
   * under each period's accrual lock (platform's `lockInOrder`: one order for every taker).
   */
  private async reverseUsageAccruals(tx: EntityManager, billed: { invoice: Invoice; date: string }[]): Promise<void> {
    await lockInOrder(tx, billed.map((b) => usageAccrualLock(b.invoice.billingPeriodId!)));
    const accruals = await tx.execute<{ key: string; organization_id: string; billing_period_id: string }[]>(
      `select substr(e.key, 9) as key, e.organization_id, e.source_id as billing_period_id from journal_entries e
        join jsonb_to_recordset(?::jsonb) as x(organization_id uuid, billing_period_id text)
          on e.organization_id = x.organization_id and e.source_id = x.billing_period_id
       where e.source_type = 'billing_period' and e.key like 'accrual:usage:' || x.billing_period_id || ':%'
       order by e.key`,
      [JSON.stringify(billed.map((b) => ({ organization_id: b.invoice.organizationId, billing_period_id: b.invoice.billingPeriodId })))],
    );
    if (!accruals.length) return;
    const byPeriod = new Map(billed.map((b) => [`${b.invoice.organizationId}:${b.invoice.billingPeriodId}`, b]));
    await this.ledger.reverseAccruals(
      tx,
      accruals.map((a) => {
        const { invoice, date } = byPeriod.get(`${a.organization_id}:${a.billing_period_id}`)!;
        return { organizationId: invoice.organizationId, key: a.key, date, reason: `usage invoiced on ${invoice.number ?? invoice.id}` };
      }),
    );
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
