import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { ReconciliationExceptionsModule } from './exceptions/exceptions.module';
import { ReconciliationRun } from './runs/entities/reconciliation-run.entity';
import { ReconciliationResult } from './runs/entities/reconciliation-result.entity';
import { ReconciliationTolerance } from './runs/entities/reconciliation-tolerance.entity';
import { CHECK_PROVIDERS, ReconciliationChecks } from './checks/checks.registry';
import { CheckFingerprints } from './checks/fingerprints';
import { TolerancesService } from './checks/tolerances.service';
import { ReconciliationRunsService } from './runs/reconciliation-runs.service';
import { ReconciliationFlows } from './runs/reconciliation-flows';
import { ReconciliationJobs } from './runs/reconciliation.jobs';
import { ExportsModule } from '@closebook/traceability';
import { InvoicingModule } from '@closebook/invoicing';
import { ReconciliationWorkbookSheets } from './workbook/reconciliation-sheets';

export const RECONCILIATION_RUN_ENTITIES = [ReconciliationRun, ReconciliationResult, ReconciliationTolerance];

const services = [...CHECK_PROVIDERS, ReconciliationChecks, CheckFingerprints, TolerancesService, ReconciliationRunsService, ReconciliationFlows];

/**
 * Reconciliation checks and runs (SPEC §6, docs/reconciliation.md): the six checks, tolerances,
 * fingerprints, runs with their captures and results. Its job handlers (`reconciliation.run`,
 * `reconciliation.check`) are registered wherever it is imported.
 */
@Module({
  // ExportsModule: the run results and exceptions sheets of the auditor workbook are registered here.
  // InvoicingModule: the rollups → lines check re-rates usage lines with invoicing's read-only rating reads.
  imports: [ReconciliationExceptionsModule, ExportsModule, InvoicingModule, MikroOrmModule.forFeature(RECONCILIATION_RUN_ENTITIES)],
  providers: [...services, ReconciliationJobs, ReconciliationWorkbookSheets],
  exports: [...services, ReconciliationJobs, ReconciliationExceptionsModule],
})
export class ReconciliationRunsModule {}

/** For the worker: the runs module (the flow's handlers). */
@Module({ imports: [ReconciliationRunsModule], exports: [ReconciliationRunsModule] })
export class ReconciliationRunsWorkerModule {}
