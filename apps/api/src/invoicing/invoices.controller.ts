import { Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, pageSchema, READ_ROLES, Roles, toPage, ZBody, ZQuery, type Principal } from '@closebook/platform';
import { CreditNotesService, InvoicesService, PaymentsService } from '@closebook/invoicing';
import {
  creditNoteBody,
  creditNoteView,
  finalizeManyBody,
  finalizeManyView,
  finalizeView,
  invoiceListQuery,
  invoiceSummaryView,
  invoiceView,
  paymentBody,
  paymentListQuery,
  paymentResultView,
  paymentView,
  presentCreditNote,
  presentInvoice,
  presentInvoiceSummary,
  presentPayment,
} from './invoicing.views';

@Controller('invoices')
export class InvoicesController {
  constructor(
    private readonly invoices: InvoicesService,
    private readonly creditNotes: CreditNotesService,
    private readonly em: EntityManager,
  ) {}

  @Get()
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'List invoices, newest first (filters: period YYYY-MM, customer, status, kind, subscription)', tags: ['invoices'], response: pageSchema(invoiceSummaryView) })
  async list(@Caller() caller: Principal, @ZQuery(invoiceListQuery) q: z.infer<typeof invoiceListQuery>) {
    return toPage(await this.invoices.list(this.em, caller.organizationId, q), q.limit, presentInvoiceSummary);
  }

  @Get(':id')
  @Roles(...READ_ROLES)
  @ApiRoute({
    summary: 'An invoice with its lines (steps, tiers, proration, rollups), tax line, credit notes, payments and amount due',
    tags: ['invoices'],
    response: invoiceView,
  })
  async get(@Caller() caller: Principal, @Param('id') id: string) {
    return presentInvoice(await this.invoices.get(this.em, caller.organizationId, id));
  }

  @Post('finalize')
  @HttpCode(200)
  @Roles('finance')
  @ApiRoute({
    summary: 'Finalize the drafts whose period ends by an instant (month-end), each in its own transaction',
    description:
      'Oldest period first per subscription; a failure leaves that draft (and its subscription\'s later drafts) as drafts and is listed in `failed`, the others are finalized. At most `limit` per call: call again while `finalized` > 0 and `remaining` > 0.',
    tags: ['invoices'],
    response: finalizeManyView,
    errors: [400],
  })
  async finalizeMany(@Caller() caller: Principal, @ZBody(finalizeManyBody) body: z.infer<typeof finalizeManyBody>) {
    return this.invoices.finalizeThrough(this.em, caller.organizationId, body.through ? new Date(body.through) : new Date(), { limit: body.limit });
  }

  @Post(':id/finalize')
  @Roles('finance')
  @ApiRoute({
    summary: 'Finalize a draft now (re-rated first if late events changed its rollups)',
    description: 'Finalizing twice is one transition: a finalized invoice is returned as it is (transitioned: false). 422 earlier_invoice_draft when an earlier period invoice of the subscription is still a draft.',
    tags: ['invoices'],
    response: finalizeView,
    errors: [422],
  })
  async finalize(@Caller() caller: Principal, @Param('id') id: string) {
    const { detail, transitioned } = await this.invoices.finalizeAndGet(this.em, caller.organizationId, id);
    return { ...presentInvoice(detail), transitioned };
  }

  @Post(':id/credit-notes')
  @Roles('finance')
  @ApiRoute({
    summary: 'Issue a credit note against lines of a finalized invoice (by amount or by quantity)',
    description: 'Never more than a line billed net of earlier credit notes (422 credit_exceeds_billed); tax at the invoice rate; a reason is required.',
    tags: ['invoices'],
    response: creditNoteView,
    errors: [422],
  })
  async creditNote(@Caller() caller: Principal, @Param('id') id: string, @ZBody(creditNoteBody) body: z.infer<typeof creditNoteBody>) {
    const { creditNote, lines } = await this.creditNotes.create(this.em, caller.organizationId, id, body);
    return presentCreditNote(creditNote, lines);
  }

  @Get(':id/credit-notes')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: "An invoice's credit notes with their lines", tags: ['invoices'], response: z.object({ data: z.array(creditNoteView) }) })
  async creditNotesOf(@Caller() caller: Principal, @Param('id') id: string) {
    return { data: (await this.creditNotes.listForInvoice(this.em, caller.organizationId, id)).map((n) => presentCreditNote(n.creditNote, n.lines)) };
  }
}

@Controller('payments')
export class PaymentsController {
  constructor(private readonly payments: PaymentsService, private readonly em: EntityManager) {}

  @Post()
  @Roles('finance')
  @ApiRoute({
    summary: 'Record a payment against a finalized invoice',
    description: 'Never more than is due (422 overpayment); the payment that settles the invoice makes it paid. A reference is unique per invoice (409).',
    tags: ['invoices'],
    response: paymentResultView,
    errors: [409, 422],
  })
  async record(@Caller() caller: Principal, @ZBody(paymentBody) body: z.infer<typeof paymentBody>) {
    const { payment, invoice } = await this.payments.record(this.em, caller.organizationId, body);
    return { payment: presentPayment(payment), invoice: presentInvoiceSummary(invoice) };
  }

  @Get()
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'List payments, newest first (optionally of one invoice)', tags: ['invoices'], response: pageSchema(paymentView) })
  async list(@Caller() caller: Principal, @ZQuery(paymentListQuery) q: z.infer<typeof paymentListQuery>) {
    return toPage(await this.payments.list(this.em, caller.organizationId, q), q.limit, presentPayment);
  }
}
