import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { InvoicingModule } from '@closebook/invoicing';
import { ExceptionQueue } from './entities/exception-queue.entity';
import { ReconciliationException } from './entities/exception.entity';
import { ExceptionComment } from './entities/exception-comment.entity';
import { ExceptionQueuesService } from './exception-queues.service';
import { ExceptionsService } from './exceptions.service';
import { LateUsageExceptions } from './late-usage-exceptions.service';
import { DisputesService } from './disputes.service';
import { ExceptionsJobs } from './exceptions.jobs';

export const EXCEPTION_ENTITIES = [ExceptionQueue, ReconciliationException, ExceptionComment];

const services = [ExceptionQueuesService, ExceptionsService, LateUsageExceptions, DisputesService];

/**
 * Exceptions and their owned queues (SPEC §6): what reconciliation runs record and resolve, the
 * human lifecycle, disputes, late usage, SLA escalation. The escalation job handler is registered
 * wherever this module is imported; its cron runs only where ScheduleModule is (the worker).
 */
@Module({
  imports: [InvoicingModule, MikroOrmModule.forFeature(EXCEPTION_ENTITIES)],
  providers: [...services, ExceptionsJobs],
  exports: [...services, ExceptionsJobs],
})
export class ReconciliationExceptionsModule {}

/** For the worker: the exceptions module, whose cron (every 5 minutes) enqueues the SLA escalation sweep. */
@Module({ imports: [ReconciliationExceptionsModule], exports: [ReconciliationExceptionsModule] })
export class ReconciliationExceptionsWorkerModule {}
