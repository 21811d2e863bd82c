import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { MikroORM, RequestContext } from '@mikro-orm/core';
import type { Job } from 'bullmq';
import { RequestScopes } from '../context/request-context';
import { JOB_HANDLER_KEY } from './job-handler.decorator';
import { JOBS, jobNames, type JobName } from './job-registry';

type Handler = (payload: unknown, job: Job) => Promise<unknown>;

export class JobRegistryError extends Error {}

/** Checks a handler map against the registry: every job exactly one handler, no handler for an unknown job. */
export function checkHandlers(found: Map<string, string[]>): void {
  const problems: string[] = [];
  for (const name of jobNames()) {
    const owners = found.get(name) ?? [];
    if (owners.length === 0) problems.push(`job "${name}" has no handler`);
    if (owners.length > 1) problems.push(`job "${name}" has ${owners.length} handlers: ${owners.join(', ')}`);
  }
  for (const name of found.keys()) {
    if (!(name in JOBS)) problems.push(`handler ${found.get(name)!.join(', ')} names unknown job "${name}"`);
  }
  if (problems.length) throw new JobRegistryError(`Job registry check failed:\n  ${problems.join('\n  ')}`);
}

/**
 * Finds the `@JobHandler` methods and runs each job in its own MikroORM context and request scope,
 * after validating its payload. The worker calls `assertComplete()` at start: every registered job
 * must have exactly one handler there. Other apps (API, CLI) hold only some handlers and may run
 * those in-process.
 */
@Injectable()
export class JobDispatcher implements OnApplicationBootstrap {
  private readonly logger = new Logger('JobDispatcher');
  private handlers = new Map<string, Handler>();
  private found = new Map<string, string[]>();
  private discovered = false;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    private readonly orm: MikroORM,
  ) {}

  onApplicationBootstrap(): void {
    this.discover();
  }

  /** Fails unless every registered job has exactly one handler and no handler names an unknown job. */
  assertComplete(): void {
    this.discover();
    checkHandlers(this.found);
  }

  private discover(): void {
    if (this.discovered) return;
    const found = new Map<string, string[]>();
    const handlers = new Map<string, Handler>();
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string, unknown> | undefined;
      if (!instance || typeof instance !== 'object' || wrapper.isDependencyTreeStatic() === false) continue;
      const proto = Object.getPrototypeOf(instance);
      for (const method of this.scanner.getAllMethodNames(proto)) {
        const name = this.reflector.get<string | undefined>(JOB_HANDLER_KEY, proto[method]);
        if (!name) continue;
        found.set(name, [...(found.get(name) ?? []), `${proto.constructor.name}.${method}`]);
        handlers.set(name, (instance[method] as Handler).bind(instance));
      }
    }
    for (const [name, owners] of found) {
      if (owners.length > 1) throw new JobRegistryError(`job "${name}" has ${owners.length} handlers: ${owners.join(', ')}`);
    }
    this.found = found;
    this.handlers = handlers;
    this.discovered = true;
  }

  async dispatch(job: Job): Promise<unknown> {
    const def = JOBS[job.name as JobName];
    const handler = this.handlers.get(job.name);
    if (!def || !handler) throw new JobRegistryError(`No handler for job "${job.name}"`);
    const payload = def.payload.parse(job.data);
    const scope = { requestId: `job:${job.queueName}:${job.id}`, principal: undefined };
    return RequestScopes.run(scope, () =>
      RequestContext.create(this.orm.em, async () => {
        const started = Date.now();
        const result = await handler(payload, job);
        this.logger.debug({ job: job.name, id: job.id, ms: Date.now() - started }, 'job done');
        return result;
      }),
    );
  }
}
