import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { AppConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { QueuesModule } from './queues/queues.module';
import { Organization } from './tenancy/organization.entity';
import { ApiKey } from './tenancy/api-key.entity';
import { AuditEntry } from './audit/audit-entry.entity';
import { IdempotencyRecord } from './idempotency/idempotency-record.entity';
import { OutboxMessage } from './outbox/outbox-message.entity';
import { AuditService } from './audit/audit.service';
import { OutboxService } from './outbox/outbox.service';
import { ApiKeysService } from './tenancy/api-keys.service';
import { OrganizationsService } from './tenancy/organizations.service';
import { IdempotencyService } from './idempotency/idempotency.service';
import { HealthService } from './health/health.service';
import { JobDispatcher } from './queues/job-dispatcher';
import { MaintenanceJobs } from './maintenance/maintenance.jobs';

export const PLATFORM_ENTITIES = [Organization, ApiKey, AuditEntry, IdempotencyRecord, OutboxMessage];

const services = [AuditService, OutboxService, ApiKeysService, OrganizationsService, IdempotencyService, HealthService, JobDispatcher, MaintenanceJobs];

/** Config, database, queues, tenancy, audit, outbox and idempotency: what every other module stands on. */
@Global()
@Module({
  imports: [AppConfigModule, DatabaseModule, QueuesModule, DiscoveryModule, MikroOrmModule.forFeature(PLATFORM_ENTITIES)],
  providers: services,
  exports: [...services, MikroOrmModule],
})
export class PlatformModule {}
