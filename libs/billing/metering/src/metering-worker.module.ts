import { Module, OnApplicationBootstrap } from '@nestjs/common';
import { MeteringJobs } from './jobs/metering.jobs';
import { MeteringModule } from './metering.module';

/** The worker side of metering: registers the rollup sweeps as BullMQ job schedulers at start. */
@Module({ imports: [MeteringModule] })
export class MeteringWorkerModule implements OnApplicationBootstrap {
  constructor(private readonly jobs: MeteringJobs) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.jobs.schedule();
  }
}
