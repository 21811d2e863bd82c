import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { LedgerModule } from '@closebook/ledger';
import { MeteringModule } from '@closebook/metering';
import { InvoicingModule } from '@closebook/invoicing';
import { ExportsModule } from '@closebook/traceability';
import { ReconciliationRunsModule } from '../reconciliation-runs.module';
import { CloseSignOff } from './entities/close-sign-off.entity';
import { CloseSettings } from './entities/close-settings.entity';
import { PeriodClose } from './entities/period-close.entity';
import { CloseService } from './close.service';
import { CloseWorkbookSheets } from '../workbook/close-trail-sheets';

export const CLOSE_ENTITIES = [CloseSignOff, CloseSettings, PeriodClose];

/** The close gate (SPEC §6): month-end work, status, sign-offs, close. */
@Module({
  imports: [ReconciliationRunsModule, LedgerModule, MeteringModule, InvoicingModule, ExportsModule, MikroOrmModule.forFeature(CLOSE_ENTITIES)],
  providers: [CloseService, CloseWorkbookSheets],
  exports: [CloseService, ReconciliationRunsModule],
})
export class CloseModule {}
