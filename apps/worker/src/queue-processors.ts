import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Processor, WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { AppConfig, JobDispatcher } from '@closebook/platform';

/**
 * One WorkerHost per queue; each routes on job.name through the dispatcher, which checked at
 * bootstrap that every registered job has exactly one handler.
 */
@Injectable()
abstract class QueueProcessor extends WorkerHost implements OnApplicationBootstrap {
  constructor(private readonly dispatcher: JobDispatcher, private readonly config: AppConfig) {
    super();
  }
  onApplicationBootstrap() {
    this.worker.concurrency = this.config.workerConcurrency;
    // An 'error' event without a listener is thrown by Node and would take the process down (a Redis
    // connection closing under a running job, at shutdown or on failover); BullMQ retries the job anyway.
    const logger = new Logger(`${this.constructor.name}`);
    this.worker.on('error', (err) => logger.warn({ err }, 'worker connection error'));
  }
  process(job: Job): Promise<unknown> {
    return this.dispatcher.dispatch(job);
  }
}

@Processor('platform') export class PlatformProcessor extends QueueProcessor {}
@Processor('metering') export class MeteringProcessor extends QueueProcessor {}
@Processor('billing') export class BillingProcessor extends QueueProcessor {}
@Processor('ledger') export class LedgerProcessor extends QueueProcessor {}
@Processor('reconciliation') export class ReconciliationProcessor extends QueueProcessor {}
@Processor('exports') export class ExportsProcessor extends QueueProcessor {}
@Processor('webhooks') export class WebhooksProcessor extends QueueProcessor {}

export const QUEUE_PROCESSORS = [
  PlatformProcessor,
  MeteringProcessor,
  BillingProcessor,
  LedgerProcessor,
  ReconciliationProcessor,
  ExportsProcessor,
  WebhooksProcessor,
];
