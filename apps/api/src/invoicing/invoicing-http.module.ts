import { Module } from '@nestjs/common';
import { InvoicingModule } from '@closebook/invoicing';
import { InvoicesController, PaymentsController } from './invoices.controller';
import { SubscriptionBillingController } from './subscription-billing.controller';
import { InvoicingReportsController } from './reports.controller';

@Module({ imports: [InvoicingModule], controllers: [InvoicesController, PaymentsController, SubscriptionBillingController, InvoicingReportsController] })
export class InvoicingHttpModule {}
