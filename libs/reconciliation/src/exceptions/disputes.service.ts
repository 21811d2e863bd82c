import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { dec } from '@closebook/money';
import { isUuid, NotFoundError, RequestScopes, UnprocessableError } from '@closebook/platform';
import { InvoiceLine, InvoicesService } from '@closebook/invoicing';
import { ExceptionsService, type RecordResult } from './exceptions.service';

/** The check key of disputes; the item key is the dispute's own id. */
export const DISPUTE_CHECK = 'dispute';

export interface DisputeInput {
  invoice_id: string;
  invoice_line_id: string;
  reason: string;
  /** The amount the customer disputes (decimal string in the invoice currency); default the whole line. */
  amount?: string;
}

/**
 * Support disputes on an invoice line (SPEC §6): each one a `dispute` exception in the `disputes`
 * queue, period = the month the invoice's period starts. Resolving it as `corrected` may issue a
 * credit note for the line (ExceptionsService.resolve, `credit_note`).
 */
@Injectable()
export class DisputesService {
  constructor(private readonly exceptions: ExceptionsService, private readonly invoices: InvoicesService) {}

  async open(em: EntityManager, organizationId: string, input: DisputeInput): Promise<RecordResult> {
    const invoice = await this.invoices.find(em, organizationId, input.invoice_id);
    const line = isUuid(input.invoice_line_id) ? await em.findOne(InvoiceLine, { id: input.invoice_line_id, invoiceId: invoice.id }) : null;
    if (!line) throw new NotFoundError('invoice line', input.invoice_line_id, 'invoice_line_id');
    const amount = input.amount ?? line.amount;
    if (dec(amount).gt(dec(line.amount).abs())) {
      throw new UnprocessableError('dispute_exceeds_line', `the disputed ${amount} exceeds the line's ${line.amount} ${invoice.currency}`, 'amount', { line_amount: line.amount });
    }
    const id = randomUUID();
    const principal = RequestScopes.current()?.principal;
    return this.exceptions.record(em, {
      organizationId,
      checkKey: DISPUTE_CHECK,
      itemKey: id,
      period: invoice.periodStart.toISOString().slice(0, 7),
      type: 'dispute',
      title: `Dispute on ${invoice.number ?? `invoice ${invoice.id}`}: ${line.description}`.slice(0, 500),
      currency: invoice.currency,
      expected: line.amount,
      actual: dec(line.amount).minus(dec(amount)).toFixed(),
      variance: dec(amount).toFixed(),
      details: { dispute_id: id, reason: input.reason, amount: dec(amount).toFixed(), line_amount: line.amount, line_description: line.description, invoice_number: invoice.number ?? null, opened_by: principal?.actor ?? 'system' },
      refs: { invoice_id: invoice.id, invoice_line_id: line.id, subscription_id: invoice.subscriptionId, customer_id: invoice.customerId },
    });
  }
}
