import { Module, OnApplicationBootstrap } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggingModule, MaintenanceJobs, PlatformModule } from '@closebook/platform';
import { QUEUE_PROCESSORS } from './queue-processors';

@Module({
  imports: [LoggingModule, PlatformModule, ScheduleModule.forRoot()],
  providers: [...QUEUE_PROCESSORS],
})
export class WorkerModule implements OnApplicationBootstrap {
  constructor(private readonly maintenance: MaintenanceJobs) {}

  async onApplicationBootstrap() {
    await this.maintenance.schedule();
  }
}
