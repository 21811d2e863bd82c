import { Injectable } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { JobsService } from '../queues/jobs.service';

export interface HealthReport {
  status: 'ok' | 'degraded';
  checks: { postgres: CheckResult; redis: CheckResult };
}
interface CheckResult {
  ok: boolean;
  latency_ms: number;
  error?: string;
}

async function timed(fn: () => Promise<unknown>, timeoutMs = 2000): Promise<CheckResult> {
  const start = Date.now();
  try {
    await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs))]);
    return { ok: true, latency_ms: Date.now() - start };
  } catch (e) {
    return { ok: false, latency_ms: Date.now() - start, error: (e as Error).message };
  }
}

@Injectable()
export class HealthService {
  constructor(private readonly orm: MikroORM, private readonly jobs: JobsService) {}

  async check(): Promise<HealthReport> {
    const [postgres, redis] = await Promise.all([
      timed(() => this.orm.em.getConnection().execute('select 1')),
      timed(async () => ((await this.jobs.queue('platform').client) as unknown as { ping(): Promise<string> }).ping()),
    ]);
    return { status: postgres.ok && redis.ok ? 'ok' : 'degraded', checks: { postgres, redis } };
  }
}
