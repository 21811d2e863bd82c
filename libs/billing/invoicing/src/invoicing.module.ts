import { Module, OnApplicationBootstrap } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { SubscriptionsModule } from '@closebook/subscriptions';
import { MeteringModule } from '@closebook/metering';
import { LedgerModule } from '@closebook/ledger';
import { Invoice } from './entities/invoice.entity';
import { InvoiceLine } from './entities/invoice-line.entity';
import { InvoiceRollup } from './entities/invoice-rollup.entity';
import { PendingItem } from './entities/pending-item.entity';
import { AllowanceDrawdownRecord, AllowanceExpiryRecord, AllowanceGrantRecord } from './entities/allowance-ledger.entity';
import { LateUsage } from './entities/late-usage.entity';
import { CreditNote, CreditNoteLine } from './entities/credit-note.entity';
import { Payment } from './entities/payment.entity';
import { DocumentSequence } from './entities/document-sequence.entity';
import { SubscriptionConversion } from './entities/subscription-conversion.entity';
import { InvoiceWriter } from './rating/invoice-writer';
import { PeriodRatingService } from './rating/period-rating.service';
import { InvoicingEvents } from './invoicing-events';
import { InvoicesService } from './invoices.service';
import { CreditNotesService } from './credit-notes.service';
import { PaymentsService } from './payments.service';
import { LateUsageService } from './late-usage.service';
import { AllowanceLedgerService } from './allowance-ledger.service';
import { AnalyticsService } from './analytics.service';
import { SubscriptionBillingHook } from './transitions/subscription-billing.hook';
import { SubscriptionBillingService } from './transitions/subscription-billing.service';
import { PeriodEndFlows } from './jobs/period-end-flows';
import { InvoicingJobs } from './jobs/invoicing.jobs';
import { LedgerPostingHook } from './posting/ledger-posting.hook';
import { UsageAccrualService } from './posting/usage-accrual.service';
import { UsageAccrualJobs } from './posting/usage-accrual.jobs';

export const INVOICING_ENTITIES = [
  Invoice,
  InvoiceLine,
  InvoiceRollup,
  PendingItem,
  AllowanceGrantRecord,
  AllowanceDrawdownRecord,
  AllowanceExpiryRecord,
  LateUsage,
  CreditNote,
  CreditNoteLine,
  Payment,
  DocumentSequence,
  SubscriptionConversion,
];

const services = [
  InvoiceWriter,
  PeriodRatingService,
  InvoicingEvents,
  InvoicesService,
  CreditNotesService,
  PaymentsService,
  LateUsageService,
  AllowanceLedgerService,
  AnalyticsService,
  SubscriptionBillingHook,
  SubscriptionBillingService,
  PeriodEndFlows,
  UsageAccrualService,
  UsageAccrualJobs,
];

/**
 * Invoices, lines, previews, finalization, credit notes, payments, transitions' money effect and the
 * allowance ledger (SPEC §2–§4). Its job handlers are registered wherever it is imported (every app,
 * so the job registry check passes everywhere); the schedules only by InvoicingWorkerModule.
 */
@Module({
  imports: [SubscriptionsModule, MeteringModule, LedgerModule, MikroOrmModule.forFeature(INVOICING_ENTITIES)],
  // LedgerPostingHook registers the posting rules with InvoicingEvents: every app that finalizes posts.
  providers: [...services, InvoicingJobs, LedgerPostingHook],
  exports: [...services, InvoicingJobs, SubscriptionsModule],
})
export class InvoicingModule {}

/** For the worker: the invoicing module plus its BullMQ job schedulers (period end, draft windows, late usage). */
@Module({ imports: [InvoicingModule], exports: [InvoicingModule] })
export class InvoicingWorkerModule implements OnApplicationBootstrap {
  constructor(private readonly jobs: InvoicingJobs) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.jobs.schedule();
  }
}
