import { Module } from '@nestjs/common';
import { PlatformModule } from '@closebook/platform';
import { SubscriptionsModule } from '@closebook/subscriptions';
import { LedgerModule } from '@closebook/ledger';
import { MeteringModule } from '@closebook/metering';
import { InvoicingModule } from '@closebook/invoicing';
import { OrgCommand, OrgCreateCommand } from './commands/org.command';
import { KeyCommand, KeyCreateCommand } from './commands/key.command';
import { MigrationCreateCommand } from './commands/migration.command';
import { DemoCommand } from './commands/demo.command';

@Module({
  imports: [PlatformModule, SubscriptionsModule, LedgerModule, MeteringModule, InvoicingModule],
  providers: [OrgCommand, OrgCreateCommand, KeyCommand, KeyCreateCommand, MigrationCreateCommand, DemoCommand],
})
export class CliModule {}
