import { Module, OnApplicationBootstrap } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggingModule, MaintenanceJobs, PlatformModule, WebhooksModule } from '@closebook/platform';
import { SubscriptionsSchedulerModule } from '@closebook/subscriptions';
import { LedgerModule } from '@closebook/ledger';
import { MeteringWorkerModule } from '@closebook/metering';
import { QUEUE_PROCESSORS } from './queue-processors';

@Module({
  imports: [LoggingModule, PlatformModule, ScheduleModule.forRoot(), WebhooksModule.forWorker(), SubscriptionsSchedulerModule, LedgerModule, MeteringWorkerModule],
  providers: [...QUEUE_PROCESSORS],
})
export class WorkerModule implements OnApplicationBootstrap {
  constructor(private readonly maintenance: MaintenanceJobs) {}

  async onApplicationBootstrap() {
    await this.maintenance.schedule();
  }
}
