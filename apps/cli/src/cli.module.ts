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
import { ExportsModule } from '@closebook/traceability';
import { ExportCommand } from './commands/export.command';
import { ExplainCliModule } from './commands/explain.command';
import { CloseModule } from '@closebook/reconciliation';
import { CloseCloseCommand, CloseCommand, CloseRunCommand, CloseSignOffCommand, CloseStatusCommand } from './commands/close.command';

@Module({
  imports: [PlatformModule, SubscriptionsModule, LedgerModule, MeteringModule, InvoicingModule, ExplainCliModule, ExportsModule, CloseModule],
  providers: [OrgCommand, OrgCreateCommand, KeyCommand, KeyCreateCommand, MigrationCreateCommand, DemoCommand, ExportCommand, CloseCommand, CloseStatusCommand, CloseRunCommand, CloseSignOffCommand, CloseCloseCommand],
})
export class CliModule {}
