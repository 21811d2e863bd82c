import { Controller, Get, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, pageSchema, READ_ROLES, Roles, toPage, UuidParam, ZBody, ZQuery, type Principal } from '@closebook/platform';
import { DisputesService, ExceptionQueuesService, ExceptionsService } from '@closebook/reconciliation';
import {
  assignBody,
  commentBody,
  commentView,
  disputeBody,
  disputeView,
  exceptionDetailView,
  exceptionListQuery,
  exceptionView,
  presentComment,
  presentDetail,
  presentException,
  presentQueue,
  queueBody,
  queueListQuery,
  queueUpdateBody,
  queueView,
  reopenBody,
  resolveBody,
  waiveBody,
} from './exceptions.views';

const TAGS = ['exceptions'];

/** Owned exception queues (SPEC §6). Reads: every reading role; changes: finance (and admin). */
@Controller('exception-queues')
export class ExceptionQueuesController {
  constructor(private readonly queues: ExceptionQueuesService, private readonly em: EntityManager) {}

  @Get()
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'Exception queues (the defaults are created on first use), newest first', tags: TAGS, response: pageSchema(queueView) })
  async list(@Caller() caller: Principal, @ZQuery(queueListQuery) q: z.infer<typeof queueListQuery>) {
    return toPage(await this.queues.list(this.em, caller.organizationId, q), q.limit, presentQueue);
  }

  @Post()
  @Roles('finance')
  @ApiRoute({
    summary: 'Create an exception queue (owner, escalation contact, review cadence, SLA, required evidence, routed types)',
    description: '409 queue_key_taken for a key in use; 409 type_already_routed when another queue already lists one of the exception types.',
    tags: TAGS,
    response: queueView,
    errors: [409],
  })
  async create(@Caller() caller: Principal, @ZBody(queueBody) body: z.infer<typeof queueBody>) {
    return presentQueue(await this.queues.create(this.em, caller.organizationId, body));
  }

  @Get(':id')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'One exception queue (by id or key)', tags: TAGS, response: queueView })
  async get(@Caller() caller: Principal, @Param('id') id: string) {
    return presentQueue(await this.queues.get(this.em, caller.organizationId, id));
  }

  @Post(':id')
  @Roles('finance')
  @ApiRoute({ summary: 'Update an exception queue (every field but its key)', tags: TAGS, response: queueView, errors: [409] })
  async update(@Caller() caller: Principal, @Param('id') id: string, @ZBody(queueUpdateBody) body: z.infer<typeof queueUpdateBody>) {
    return presentQueue(await this.queues.update(this.em, caller.organizationId, id, body));
  }
}

/** Exceptions and their lifecycle (SPEC §6): open → assigned → resolved | waived, reopen, comments. */
@Controller('exceptions')
export class ExceptionsController {
  constructor(private readonly exceptions: ExceptionsService, private readonly em: EntityManager) {}

  @Get()
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'Exceptions, newest first (filters: queue id or key, status, period YYYY-MM, type, check, assignee)', tags: TAGS, response: pageSchema(exceptionView) })
  async list(@Caller() caller: Principal, @ZQuery(exceptionListQuery) q: z.infer<typeof exceptionListQuery>) {
    return toPage(await this.exceptions.list(this.em, caller.organizationId, q), q.limit, presentException);
  }

  @Get(':id')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'One exception with its comments and its queue (owner, escalation contact, required evidence)', tags: TAGS, response: exceptionDetailView })
  async get(@Caller() caller: Principal, @UuidParam('id', 'exception') id: string) {
    return presentDetail(await this.exceptions.get(this.em, caller.organizationId, id));
  }

  @Post(':id/assign')
  @Roles('finance')
  @ApiRoute({ summary: 'Assign (or reassign) an open exception', description: '422 exception_not_open when it is resolved or waived.', tags: TAGS, response: exceptionDetailView, errors: [422] })
  async assign(@Caller() caller: Principal, @UuidParam('id', 'exception') id: string, @ZBody(assignBody) body: z.infer<typeof assignBody>) {
    return presentDetail(await this.exceptions.assign(this.em, caller.organizationId, id, body.assignee));
  }

  @Post(':id/comment')
  @Roles('finance')
  @ApiRoute({ summary: 'Comment on an exception (any status)', tags: TAGS, response: commentView })
  async comment(@Caller() caller: Principal, @UuidParam('id', 'exception') id: string, @ZBody(commentBody) body: z.infer<typeof commentBody>) {
    return presentComment(await this.exceptions.comment(this.em, caller.organizationId, id, body.body));
  }

  @Post(':id/resolve')
  @Roles('finance')
  @ApiRoute({
    summary: 'Resolve an open exception as corrected (with the document that fixed it) or accepted (a note; the evidence is then frozen)',
    description:
      "422 evidence_required (details.missing, details.not_found) unless the queue's required evidence is shown and every referenced document exists in the organization. A late-usage item resolved as corrected is billed as an adjustment on the next period invoice; `credit_note` issues a credit note for the exception's invoice line.",
    tags: TAGS,
    response: exceptionDetailView,
    errors: [422],
  })
  async resolve(@Caller() caller: Principal, @UuidParam('id', 'exception') id: string, @ZBody(resolveBody) body: z.infer<typeof resolveBody>) {
    return presentDetail(await this.exceptions.resolve(this.em, caller.organizationId, id, body));
  }

  @Post(':id/waive')
  @Roles('finance')
  @ApiRoute({ summary: 'Waive an open exception, with a note (late usage is then never billed)', tags: TAGS, response: exceptionDetailView, errors: [422] })
  async waive(@Caller() caller: Principal, @UuidParam('id', 'exception') id: string, @ZBody(waiveBody) body: z.infer<typeof waiveBody>) {
    return presentDetail(await this.exceptions.waive(this.em, caller.organizationId, id, body.note));
  }

  @Post(':id/reopen')
  @Roles('finance')
  @ApiRoute({ summary: 'Reopen a resolved or waived exception, with a reason (the past resolution is kept)', tags: TAGS, response: exceptionDetailView, errors: [422] })
  async reopen(@Caller() caller: Principal, @UuidParam('id', 'exception') id: string, @ZBody(reopenBody) body: z.infer<typeof reopenBody>) {
    return presentDetail(await this.exceptions.reopen(this.em, caller.organizationId, id, body.reason));
  }
}

/** Support disputes on an invoice line: each a `dispute` exception in the `disputes` queue. */
@Controller('disputes')
export class DisputesController {
  constructor(private readonly disputes: DisputesService, private readonly em: EntityManager) {}

  @Post()
  @Roles('finance', 'support')
  @ApiRoute({
    summary: 'Open a dispute on an invoice line (a dispute exception in the disputes queue)',
    description: '`amount` defaults to the whole line; more than the line is 422 dispute_exceeds_line.',
    tags: TAGS,
    response: disputeView,
    errors: [422],
  })
  async open(@Caller() caller: Principal, @ZBody(disputeBody) body: z.infer<typeof disputeBody>) {
    const r = await this.disputes.open(this.em, caller.organizationId, body);
    return { ...presentException(r.exception), created: r.created };
  }
}
