import { Body, Controller, HttpCode, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { IngestService } from '@closebook/metering';
import { ApiRoute, Caller, Roles, type Principal } from '@closebook/platform';
import { IngestBodyPipe, ingestBody, ingestResult } from './metering.views';
import type { z } from 'zod';

@Controller('events')
export class EventsController {
  constructor(private readonly ingest: IngestService, private readonly em: EntityManager) {}

  @Post()
  @HttpCode(200)
  @Roles('ingest')
  @ApiRoute({
    summary: 'Send a batch of up to 10,000 usage events',
    description:
      'Each item is checked on its own: a bad item is listed in `rejected` with its index, code and reason, the rest are stored. ' +
      '`event_id` is the idempotency key: an event already stored (in this batch, an earlier one, or before a restart) counts as a duplicate.',
    tags: ['usage'],
    response: ingestResult,
  })
  async create(@Caller() caller: Principal, @Body(new IngestBodyPipe()) body: z.infer<typeof ingestBody>) {
    return this.ingest.ingest(this.em, caller.organizationId, body.events);
  }
}
