import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { LedgerModule } from '@closebook/ledger';
import { LedgerWorkbookSheets } from './ledger-sheets';
import { Export } from './export.entity';
import { BuiltinWorkbookSheets } from './builtin-sheets';
import { ExportOptions, ExportsService } from './exports.service';
import { ExportsJobs } from './exports.jobs';
import { WorkbookSheetRegistry } from './sheet-registry';

export const EXPORT_ENTITIES = [Export];

/**
 * Auditor workbook exports: the `exports` table, the sheet registry (other modules register their
 * sheets with `WorkbookSheetRegistry`), the streaming writer and the `exports.audit-workbook` job.
 */
@Module({
  // LedgerModule: the trial balance sheet and tie-outs read the ledger's own report.
  imports: [MikroOrmModule.forFeature(EXPORT_ENTITIES), LedgerModule],
  providers: [WorkbookSheetRegistry, BuiltinWorkbookSheets, LedgerWorkbookSheets, ExportOptions, ExportsService, ExportsJobs],
  exports: [WorkbookSheetRegistry, ExportOptions, ExportsService],
})
export class ExportsModule {}
