import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { FlowProducer } from 'bullmq';
import { AppConfig, JOBS, redisConnection } from '@closebook/platform';
import type { ReconciliationRun } from './entities/reconciliation-run.entity';

/** BullMQ job ids may not contain ':' — `recon-{run}` and `recon-{run}-{check}`. */
export const runJobId = (runId: string) => `recon-${runId}`;
export const checkJobId = (runId: string, check: string) => `recon-${runId}-${check}`;

/**
 * A run's BullMQ flow (queue `reconciliation`): parent `reconciliation.run` waits for one child
 * `reconciliation.check` per check (3 attempts each; a child that fails for good does not block
 * the parent, which then finishes the run as `error`). Job ids are the run's, so adding a flow
 * twice is one flow.
 */
@Injectable()
export class ReconciliationFlows implements OnModuleDestroy {
  private readonly logger = new Logger('ReconciliationFlows');
  private producer?: FlowProducer;

  constructor(private readonly config: AppConfig) {}

  async onModuleDestroy(): Promise<void> {
    await this.producer?.close();
  }

  async start(run: ReconciliationRun): Promise<string> {
    await this.flows().add({
      name: 'reconciliation.run',
      queueName: 'reconciliation',
      data: JOBS['reconciliation.run'].payload.parse({ organization_id: run.organizationId, run_id: run.id }),
      opts: { jobId: runJobId(run.id), attempts: 3, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 3600 }, removeOnFail: { age: 7 * 24 * 3600 } },
      children: run.checks.map((check) => ({
        name: 'reconciliation.check',
        queueName: 'reconciliation',
        data: JOBS['reconciliation.check'].payload.parse({ organization_id: run.organizationId, run_id: run.id, check }),
        opts: {
          jobId: checkJobId(run.id, check),
          attempts: 3,
          backoff: { type: 'exponential', delay: 2000 },
          removeOnComplete: { age: 3600 },
          removeOnFail: { age: 7 * 24 * 3600 },
          ignoreDependencyOnFailure: true,
        },
      })),
    });
    return runJobId(run.id);
  }

  private flows(): FlowProducer {
    if (!this.producer) {
      this.producer = new FlowProducer({ connection: redisConnection(this.config.redisUrl), prefix: this.config.queuePrefix });
      this.producer.on('error', (err) => this.logger.warn({ err }, 'flow producer connection error'));
    }
    return this.producer;
  }
}
