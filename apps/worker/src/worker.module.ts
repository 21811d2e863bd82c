import { Module, OnApplicationBootstrap } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { JobDispatcher, LoggingModule, MaintenanceJobs, PlatformModule, WebhooksModule } from '@closebook/platform';
import { SubscriptionsSchedulerModule } from '@closebook/subscriptions';
import { LedgerModule } from '@closebook/ledger';
import { MeteringWorkerModule } from '@closebook/metering';
import { InvoicingWorkerModule } from '@closebook/invoicing';
import { ExportsModule } from '@closebook/traceability';
import { CloseModule, ReconciliationExceptionsWorkerModule, ReconciliationRunsWorkerModule } from '@closebook/reconciliation';
import { QUEUE_PROCESSORS } from './queue-processors';

@Module({
  imports: [LoggingModule, PlatformModule, ScheduleModule.forRoot(), WebhooksModule.forWorker(), SubscriptionsSchedulerModule, LedgerModule, MeteringWorkerModule, InvoicingWorkerModule, ExportsModule, ReconciliationExceptionsWorkerModule, ReconciliationRunsWorkerModule, CloseModule],
  providers: [...QUEUE_PROCESSORS],
})
export class WorkerModule implements OnApplicationBootstrap {
  constructor(private readonly maintenance: MaintenanceJobs, private readonly dispatcher: JobDispatcher) {}

  async onApplicationBootstrap() {
    // Refuse to start with a job nobody handles or two handlers for one job.
    this.dispatcher.assertComplete();
    await this.maintenance.schedule();
  }
}
