import { Module } from '@nestjs/common';
import { ReconciliationRunsModule } from '@closebook/reconciliation';
import { ReconciliationRunsController, ReconciliationTolerancesController } from './reconciliation.controller';

@Module({ imports: [ReconciliationRunsModule], controllers: [ReconciliationRunsController, ReconciliationTolerancesController] })
export class ReconciliationHttpModule {}
