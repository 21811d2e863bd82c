import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { ApiKeyGuard, ErrorFilter, IdempotencyInterceptor, LoggingModule, PlatformModule, RequestScopeMiddleware } from '@closebook/platform';
import { PlatformHttpModule } from './platform/platform-http.module';
import { WebhooksHttpModule } from './webhooks/webhooks-http.module';
import { CatalogHttpModule } from './catalog/catalog-http.module';
import { CustomersHttpModule } from './customers/customers-http.module';
import { LedgerHttpModule } from './ledger/ledger-http.module';
import { MeteringHttpModule } from './metering/metering-http.module';
import { InvoicingHttpModule } from './invoicing/invoicing-http.module';
import { ExportsHttpModule } from './exports/exports-http.module';
import { TraceabilityHttpModule } from './traceability/traceability-http.module';
import { ExceptionsHttpModule } from './exceptions/exceptions-http.module';

import { ReconciliationHttpModule } from './reconciliation/reconciliation-http.module';
import { CloseHttpModule } from './close/close-http.module';

@Module({
  imports: [LoggingModule, PlatformModule, PlatformHttpModule, WebhooksHttpModule, CatalogHttpModule, CustomersHttpModule, LedgerHttpModule, MeteringHttpModule, InvoicingHttpModule, TraceabilityHttpModule, ExceptionsHttpModule, ExportsHttpModule, ReconciliationHttpModule, CloseHttpModule],
  providers: [
    { provide: APP_GUARD, useClass: ApiKeyGuard },
    { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
    { provide: APP_FILTER, useClass: ErrorFilter },
  ],
})
export class ApiModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(RequestScopeMiddleware).forRoutes('*path');
  }
}
