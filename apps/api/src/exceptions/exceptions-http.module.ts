import { Module } from '@nestjs/common';
import { ReconciliationExceptionsModule } from '@closebook/reconciliation';
import { DisputesController, ExceptionQueuesController, ExceptionsController } from './exceptions.controller';

@Module({ imports: [ReconciliationExceptionsModule], controllers: [ExceptionQueuesController, ExceptionsController, DisputesController] })
export class ExceptionsHttpModule {}
