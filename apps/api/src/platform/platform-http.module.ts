import { Module } from '@nestjs/common';
import { HealthController } from './health.controller';
import { ApiKeysController } from './api-keys.controller';
import { AuditLogController } from './audit-log.controller';
import { OrganizationController } from './organization.controller';

@Module({ controllers: [HealthController, ApiKeysController, AuditLogController, OrganizationController] })
export class PlatformHttpModule {}
