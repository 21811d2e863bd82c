import { Injectable } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec, getCurrency, Money, MoneyError } from '@closebook/money';
import { AuditService, NotFoundError, OutboxService, UnprocessableError, ValidationError } from '@closebook/platform';
import { Invoice } from './entities/invoice.entity';
import { InvoiceLine } from './entities/invoice-line.entity';
import { CreditNote, CreditNoteLine } from './entities/credit-note.entity';
import { Payment } from './entities/payment.entity';
import { InvoicingEvents } from './invoicing-events';
import { nextDocumentNumber } from './document-numbers';
import { balanceOf, InvoicesService } from './invoices.service';

export interface CreditNoteInput {
  reason: string;
  /** Each line by `amount` (decimal string in the invoice currency) or by `quantity` (a share of the line). */
  lines: { invoice_line_id: string; amount?: string; quantity?: string }[];
}

export interface CreatedCreditNote {
  creditNote: CreditNote;
  lines: CreditNoteLine[];
}

/**
 * Credit notes (SPEC §4): corrections of a finalized invoice, which itself never changes. Against
 * its lines, by amount or by quantity, never more than a line billed net of earlier credit notes;
 * tax at the invoice's rate, never more than the tax left to credit. Audited, `credit_note.created`
 * in the outbox, posting hooks — one transaction, serialized per invoice by a row lock.
 */
@Injectable()
export class CreditNotesService {
  constructor(
    private readonly audit: AuditService,
    private readonly outbox: OutboxService,
    private readonly events: InvoicingEvents,
    private readonly invoices: InvoicesService,
  ) {}

  async create(em: EntityManager, organizationId: string, invoiceId: string, input: CreditNoteInput): Promise<CreatedCreditNote> {
    const found = await this.invoices.find(em, organizationId, invoiceId);
    return em.transactional(async (tx) => {
      const invoice = await tx.findOneOrFail(Invoice, { id: found.id }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
      if (invoice.status === 'draft') {
        throw new UnprocessableError('invoice_not_finalized', `invoice ${invoice.id} is a draft; change it by re-rating, credit it once finalized`, 'invoice_id');
      }
      if (invoice.status === 'void') throw new UnprocessableError('invoice_void', `invoice ${invoice.id} is void`, 'invoice_id');
      const cur = getCurrency(invoice.currency);
      const lines = new Map((await tx.find(InvoiceLine, { invoiceId: invoice.id })).map((l) => [l.id, l]));
      const earlier = await tx.execute<{ invoice_line_id: string; amount: string; quantity: string }[]>(
        `select cl.invoice_line_id, sum(cl.amount)::text as amount, coalesce(sum(cl.quantity), 0)::text as quantity
         from credit_note_lines cl join credit_notes cn on cn.id = cl.credit_note_id
         where cn.invoice_id = ? group by cl.invoice_line_id`,
        [invoice.id],
      );
      const before = new Map(earlier.map((r) => [r.invoice_line_id, r]));
      const seen = new Set<string>();
      const planned = input.lines.map((req, i) => {
        const field = `lines[${i}]`;
        const line = lines.get(req.invoice_line_id);
        if (!line) throw new NotFoundError('invoice line', req.invoice_line_id, `${field}.invoice_line_id`);
        if (seen.has(line.id)) throw new ValidationError('duplicate_line', `invoice line ${line.id} is listed twice`, `${field}.invoice_line_id`);
        seen.add(line.id);
        const billed = Money.of(line.amount, cur);
        if (!billed.isPositive()) {
          throw new UnprocessableError('line_not_creditable', `line ${line.id} billed ${billed.format()}; only lines with a positive amount can be credited`, `${field}.invoice_line_id`);
        }
        const prior = before.get(line.id);
        const remaining = billed.minus(Money.of(prior?.amount ?? '0', cur));
        let amount: Money;
        let quantity: string | null = null;
        if (req.amount !== undefined) {
          amount = parseMoney(req.amount, cur.code, `${field}.amount`);
        } else {
          const q = dec(req.quantity as string);
          const lineQty = dec(line.quantity);
          const left = lineQty.minus(dec(prior?.quantity ?? '0'));
          if (!lineQty.gt(0)) throw new UnprocessableError('line_not_creditable', `line ${line.id} has no quantity to credit; credit it by amount`, `${field}.quantity`);
          if (q.gt(left)) {
            throw new UnprocessableError('credit_exceeds_billed', `quantity ${q.toFixed()} exceeds the ${left.toFixed()} left to credit on line ${line.id}`, `${field}.quantity`, {
              remaining_quantity: left.toFixed(),
            });
          }
          amount = billed.times(q.div(lineQty)).round();
          quantity = q.toFixed();
        }
        if (!amount.isPositive()) throw new ValidationError('invalid_value', 'the amount credited must be greater than 0', `${field}.${req.amount !== undefined ? 'amount' : 'quantity'}`);
        if (amount.compare(remaining) > 0) {
          throw new UnprocessableError(
            'credit_exceeds_billed',
            `${amount.format()} exceeds the ${remaining.format()} ${cur.code} left to credit on line ${line.id} (billed ${billed.format()}, credited before ${Money.of(prior?.amount ?? '0', cur).format()})`,
            `${field}.${req.amount !== undefined ? 'amount' : 'quantity'}`,
            { remaining: { amount: remaining.format(), currency: cur.code } },
          );
        }
        return { line, amount, quantity };
      });
      const subtotal = Money.sum(planned.map((p) => p.amount), cur);
      let tax = Money.zero(cur);
      if (invoice.taxRate && dec(invoice.taxRate).gt(0)) {
        const [{ credited_tax }] = await tx.execute<{ credited_tax: string }[]>(
          'select coalesce(sum(tax_amount), 0)::text as credited_tax from credit_notes where invoice_id = ?',
          [invoice.id],
        );
        const left = Money.of(invoice.taxAmount, cur).minus(Money.of(credited_tax, cur));
        tax = subtotal.times(dec(invoice.taxRate)).round();
        if (tax.compare(left) > 0) tax = left.isNegative() ? Money.zero(cur) : left;
      }
      const total = subtotal.plus(tax);
      const note = tx.create(CreditNote, {
        organizationId: invoice.organizationId,
        invoiceId: invoice.id,
        customerId: invoice.customerId,
        number: await nextDocumentNumber(tx, invoice.organizationId, 'credit_note'),
        reason: input.reason,
        currency: cur.code,
        subtotal: subtotal.format(),
        taxAmount: tax.format(),
        total: total.format(),
      });
      const noteLines = planned.map((p) =>
        tx.create(CreditNoteLine, {
          organizationId: invoice.organizationId,
          creditNoteId: note.id,
          invoiceLineId: p.line.id,
          quantity: p.quantity,
          amount: p.amount.format(),
          description: `Credit on "${p.line.description}"${p.quantity ? ` (${p.quantity} of ${dec(p.line.quantity).toFixed()})` : ''}: ${input.reason}`,
        }),
      );
      await tx.flush();
      this.audit.record(tx, {
        organizationId: invoice.organizationId,
        action: 'credit_note.created',
        resourceType: 'credit_note',
        resourceId: note.id,
        data: {
          invoice_id: invoice.id,
          number: note.number,
          reason: input.reason,
          subtotal: note.subtotal,
          tax: note.taxAmount,
          total: note.total,
          lines: planned.map((p) => ({ invoice_line_id: p.line.id, amount: p.amount.format(), quantity: p.quantity })),
        },
      });
      await this.outbox.emit(tx, {
        organizationId: invoice.organizationId,
        type: 'credit_note.created',
        dedupeKey: `credit_note.created:${note.id}`,
        payload: {
          credit_note_id: note.id,
          number: note.number,
          invoice_id: invoice.id,
          invoice_number: invoice.number,
          customer_id: invoice.customerId,
          reason: input.reason,
          total: { amount: note.total, currency: cur.code },
          lines: noteLines.map((l) => ({ invoice_line_id: l.invoiceLineId, amount: { amount: l.amount, currency: cur.code }, quantity: l.quantity ?? null })),
        },
      });
      await this.events.creditNoteCreated(tx, note, noteLines, invoice);
      // An invoice that payments and credit notes now settle is paid.
      const [notes, payments] = await Promise.all([tx.find(CreditNote, { invoiceId: invoice.id }), tx.find(Payment, { invoiceId: invoice.id })]);
      if (invoice.status === 'finalized' && payments.length && !Money.of(balanceOf(invoice, notes, payments).due, cur).isPositive()) {
        invoice.status = 'paid';
        invoice.paidAt = payments.map((p) => p.receivedAt).sort((a, b) => b.getTime() - a.getTime())[0];
        this.audit.record(tx, { organizationId: invoice.organizationId, action: 'invoice.paid', resourceType: 'invoice', resourceId: invoice.id, data: { by: 'credit_note', credit_note_id: note.id } });
      }
      await tx.flush();
      return { creditNote: note, lines: noteLines };
    });
  }

  async listForInvoice(em: EntityManager, organizationId: string, invoiceId: string): Promise<{ creditNote: CreditNote; lines: CreditNoteLine[] }[]> {
    const invoice = await this.invoices.find(em, organizationId, invoiceId);
    const notes = await em.find(CreditNote, { invoiceId: invoice.id }, { orderBy: { createdAt: 'asc' } });
    const lines = notes.length ? await em.find(CreditNoteLine, { creditNoteId: { $in: notes.map((n) => n.id) } }) : [];
    return notes.map((n) => ({ creditNote: n, lines: lines.filter((l) => l.creditNoteId === n.id) }));
  }
}

/** A positive amount with at most the currency's minor-unit decimals (400 otherwise). */
export function parseMoney(amount: string, currency: string, field: string): Money {
  let m: Money;
  try {
    m = Money.parse(amount, currency);
  } catch (err) {
    if (err instanceof MoneyError) throw new ValidationError('invalid_amount', `${field} must be a decimal amount in ${currency} (${err.message})`, field);
    throw err;
  }
  if (!m.isPositive()) throw new ValidationError('invalid_value', `${field} must be greater than 0`, field);
  return m;
}
