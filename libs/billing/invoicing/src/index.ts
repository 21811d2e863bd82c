/**
 * @closebook/invoicing — invoices and lines, the period-end rating pipeline, draft windows and
 * finalization, late usage, plan transitions' money effect, the allowance ledger, credit notes and
 * payments (SPEC §2–§4). Rules and data contract: docs/invoicing.md.
 */
export { InvoicingModule, InvoicingWorkerModule, INVOICING_ENTITIES } from './invoicing.module';

export * from './entities/invoice.entity';
export * from './entities/invoice-line.entity';
export * from './entities/invoice-rollup.entity';
export * from './entities/pending-item.entity';
export * from './entities/allowance-ledger.entity';
export * from './entities/late-usage.entity';
export * from './entities/credit-note.entity';
export * from './entities/payment.entity';
export * from './entities/document-sequence.entity';
export * from './entities/subscription-conversion.entity';

export { InvoicingEvents } from './invoicing-events';
export type { FinalizedInvoice, FinalizedLine, InvoicingPostingHook } from './invoicing-events';
export { InvoicesService, balanceOf, PAYMENT_TERMS_DAYS } from './invoices.service';
export type { InvoiceListQuery, InvoiceBalance, InvoiceDetail, FinalizeResult, FinalizeManyResult } from './invoices.service';
export { CreditNotesService, parseMoney } from './credit-notes.service';
export type { CreditNoteInput, CreatedCreditNote } from './credit-notes.service';
export { PaymentsService } from './payments.service';
export type { PaymentInput } from './payments.service';
export { PeriodRatingService, STATISTICS_REFRESH_AFTER, usageOf, taxRateOf, isDuplicateInvoice } from './rating/period-rating.service';
export type { BuiltPeriodInput, RateManyResult, RatePeriodResult, UpcomingInvoice } from './rating/period-rating.service';
export { PeriodRatingReads } from './rating/period-rating-reads';
export type { BilledUsageInput, RatingStates } from './rating/period-rating-reads';
export { InvoiceWriter, zeroOf } from './rating/invoice-writer';
export type { RollupSnapshot, LineSource, WriteInvoiceArgs } from './rating/invoice-writer';
export { contentHash } from './rating/invoice-content';
export { LateUsageService } from './late-usage.service';
export { AllowanceLedgerService } from './allowance-ledger.service';
export type { BucketReplay } from './allowance-ledger.service';
export { AnalyticsService } from './analytics.service';
export type { ConversionCohort } from './analytics.service';
export { SubscriptionBillingHook } from './transitions/subscription-billing.hook';
export type { ChangeToRate, RatedChange } from './transitions/subscription-billing.hook';
export { SubscriptionBillingService } from './transitions/subscription-billing.service';
export type { TransitionPreview, TransitionOutcome } from './transitions/subscription-billing.service';
export { PeriodEndFlows, RATING_BATCH_SIZE } from './jobs/period-end-flows';
export type { StartedFlows } from './jobs/period-end-flows';
export { InvoicingJobs, PERIOD_END_EVERY_MS, FINALIZE_DUE_EVERY_MS, WATCH_USAGE_EVERY_MS } from './jobs/invoicing.jobs';
export type { BatchResult } from './jobs/invoicing.jobs';
export { invoicePosting, creditNotePosting, paymentPosting, feeRevenueAccount } from './posting/posting-rules';
export type { InvoicePosting, PostableInvoice, PostableLine, PostableCreditNote, Deferral } from './posting/posting-rules';
export { periodIssueDate, openingIssueDate, transitionIssueDate } from './posting/accounting-dates';
export { LedgerPostingHook, invoiceEntryKey, creditNoteEntryKey, paymentEntryKey, deferralKey } from './posting/ledger-posting.hook';
export { UsageAccrualService, usageAccrualKey, usageAccrualLock } from './posting/usage-accrual.service';
export type { UsageAccrualResult } from './posting/usage-accrual.service';
export { UsageAccrualJobs, usageAccrualJobId } from './posting/usage-accrual.jobs';
