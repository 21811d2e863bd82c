import { Controller, Get } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, READ_ROLES, Roles, UuidParam, ZQuery, type Principal } from '@closebook/platform';
import { ExplanationService } from '@closebook/traceability';
import { eventsPageView, explanationQuery, explanationView, lineEventsQuery } from './explanation.views';

const TAGS = ['traceability'];

/** "What produced this charge?" (SPEC §7): read-only explanations of invoice lines. */
@Controller('invoices')
export class ExplanationController {
  constructor(private readonly explanations: ExplanationService, private readonly em: EntityManager) {}

  @Get(':id/lines/:line_id/explanation')
  @Roles(...READ_ROLES)
  @ApiRoute({
    summary: 'What produced this charge: the line, its plan version and price, the steps (replayed), rollups, events, ledger entries, credit notes, exceptions, disputes and the escalation owner',
    description: 'Events are paginated (events_limit, events_cursor) and filterable (events_from, events_to, events_event_id). Another organization\'s invoice or line answers 404.',
    tags: TAGS,
    response: explanationView,
  })
  async explain(
    @Caller() caller: Principal,
    @UuidParam('id', 'invoice') id: string,
    @UuidParam('line_id', 'invoice line') lineId: string,
    @ZQuery(explanationQuery) q: z.infer<typeof explanationQuery>,
  ) {
    return this.explanations.explain(this.em, caller.organizationId, id, lineId, {
      events: { limit: q.events_limit, cursor: q.events_cursor, from: q.events_from, to: q.events_to, event_id: q.events_event_id },
    });
  }

  @Get(':id/lines/:line_id/events')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: "The usage events that fed an invoice line's rollups, oldest first (keyset pages)", tags: TAGS, response: eventsPageView })
  async events(
    @Caller() caller: Principal,
    @UuidParam('id', 'invoice') id: string,
    @UuidParam('line_id', 'invoice line') lineId: string,
    @ZQuery(lineEventsQuery) q: z.infer<typeof lineEventsQuery>,
  ) {
    return this.explanations.events(this.em, caller.organizationId, id, lineId, q);
  }
}
