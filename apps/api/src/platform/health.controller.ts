import { Controller, Get, Res } from '@nestjs/common';
import type { Response } from 'express';
import { z } from 'zod';
import { ApiRoute, HealthService, Public } from '@closebook/platform';

const check = z.object({ ok: z.boolean(), latency_ms: z.number(), error: z.string().optional() });

@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Get()
  @Public()
  @ApiRoute({
    summary: 'PostgreSQL and Redis reachability (503 when either is down)',
    tags: ['platform'],
    response: z.object({ status: z.enum(['ok', 'degraded']), checks: z.object({ postgres: check, redis: check }) }),
  })
  async get(@Res({ passthrough: true }) res: Response) {
    const report = await this.health.check();
    if (report.status !== 'ok') res.status(503);
    return report;
  }
}
