import { Injectable } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Money } from '@closebook/money';
import { afterCursor, AuditService, ConflictError, decodeCursor, UnprocessableError, ValidationError } from '@closebook/platform';
import { Invoice } from './entities/invoice.entity';
import { CreditNote } from './entities/credit-note.entity';
import { Payment } from './entities/payment.entity';
import { InvoicingEvents } from './invoicing-events';
import { balanceOf, InvoicesService } from './invoices.service';
import { parseMoney } from './credit-notes.service';

export interface PaymentInput {
  invoice_id: string;
  amount: string;
  /** When given, must be the invoice's currency. */
  currency?: string;
  received_at: string;
  reference: string;
}

/**
 * Payments (SPEC §4) against a finalized invoice: never more than is left to pay (total − credit
 * notes − earlier payments); the payment that settles it makes it `paid`. One transaction per
 * payment, serialized per invoice by a row lock; the posting hooks apply it to the ledger.
 */
@Injectable()
export class PaymentsService {
  constructor(
    private readonly audit: AuditService,
    private readonly events: InvoicingEvents,
    private readonly invoices: InvoicesService,
  ) {}

  async record(em: EntityManager, organizationId: string, input: PaymentInput): Promise<{ payment: Payment; invoice: Invoice }> {
    const found = await this.invoices.find(em, organizationId, input.invoice_id);
    return em.transactional(async (tx) => {
      const invoice = await tx.findOneOrFail(Invoice, { id: found.id }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
      if (invoice.status === 'draft') throw new UnprocessableError('invoice_not_finalized', `invoice ${invoice.id} is a draft; payments apply to finalized invoices`, 'invoice_id');
      if (invoice.status === 'void') throw new UnprocessableError('invoice_void', `invoice ${invoice.id} is void`, 'invoice_id');
      if (invoice.status === 'paid') throw new UnprocessableError('invoice_paid', `invoice ${invoice.id} is paid in full`, 'invoice_id');
      if (input.currency !== undefined && input.currency !== invoice.currency) {
        throw new UnprocessableError('currency_mismatch', `invoice ${invoice.id} is in ${invoice.currency}, not ${input.currency}`, 'currency');
      }
      const amount = parseMoney(input.amount, invoice.currency, 'amount');
      const receivedAt = new Date(input.received_at);
      if (Number.isNaN(receivedAt.getTime())) throw new ValidationError('invalid_value', 'received_at must be an ISO 8601 timestamp', 'received_at');
      const [notes, payments] = await Promise.all([tx.find(CreditNote, { invoiceId: invoice.id }), tx.find(Payment, { invoiceId: invoice.id })]);
      if (payments.some((p) => p.reference === input.reference)) {
        throw new ConflictError('payment_reference_taken', `a payment with reference "${input.reference}" is already recorded on invoice ${invoice.id}`, 'reference');
      }
      const due = Money.of(balanceOf(invoice, notes, payments).due, invoice.currency);
      if (amount.compare(due) > 0) {
        throw new UnprocessableError('overpayment', `${amount.format()} exceeds the ${due.format()} ${invoice.currency} due on invoice ${invoice.id}`, 'amount', {
          amount_due: { amount: due.format(), currency: invoice.currency },
        });
      }
      const payment = tx.create(Payment, {
        organizationId,
        invoiceId: invoice.id,
        customerId: invoice.customerId,
        amount: amount.format(),
        currency: invoice.currency,
        receivedAt,
        reference: input.reference,
      });
      await tx.flush();
      this.audit.record(tx, {
        organizationId,
        action: 'payment.recorded',
        resourceType: 'payment',
        resourceId: payment.id,
        data: { invoice_id: invoice.id, amount: payment.amount, currency: payment.currency, received_at: receivedAt.toISOString(), reference: input.reference },
      });
      await this.events.paymentRecorded(tx, payment, invoice);
      if (amount.equals(due)) {
        invoice.status = 'paid';
        invoice.paidAt = receivedAt;
        this.audit.record(tx, { organizationId, action: 'invoice.paid', resourceType: 'invoice', resourceId: invoice.id, data: { payment_id: payment.id } });
      }
      await tx.flush();
      return { payment, invoice };
    });
  }

  /** Payments, newest first (optionally of one invoice); fetch `limit + 1` rows for `toPage`. */
  async list(em: EntityManager, organizationId: string, q: { limit: number; cursor?: string; invoice?: string }): Promise<Payment[]> {
    const where: Record<string, unknown> = { organizationId, ...afterCursor(decodeCursor(q.cursor)) };
    if (q.invoice) where.invoiceId = (await this.invoices.find(em, organizationId, q.invoice)).id;
    return em.find(Payment, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 });
  }
}
