import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { SubscriptionsModule } from '@closebook/subscriptions';
import { AllowanceEngine } from './allowance/allowance-engine';
import { AllowanceStateService } from './allowance/allowance-state.service';
import { IngestService } from './ingest/ingest.service';
import { UsagePartitions } from './ingest/partitions';
import { MeteringJobs } from './jobs/metering.jobs';
import { RollupsService } from './rollups/rollups.service';
import { UsageRollup } from './rollups/usage-rollup.entity';
import { UsageService } from './rollups/usage.service';
import { SubscriptionRollupsHook } from './rollups/subscription-rollups.hook';

const services = [IngestService, UsagePartitions, RollupsService, AllowanceEngine, AllowanceStateService, UsageService, MeteringJobs];

/** Event ingest, rollups and allowance state (SPEC §3). The worker adds MeteringWorkerModule for the schedules. */
@Module({
  imports: [SubscriptionsModule, MikroOrmModule.forFeature([UsageRollup])],
  providers: [...services, SubscriptionRollupsHook],
  exports: services,
})
export class MeteringModule {}
