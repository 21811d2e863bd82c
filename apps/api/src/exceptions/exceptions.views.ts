import { z } from 'zod';
import { decimalString, paginationQuery, periodString } from '@closebook/platform';
import {
  EVIDENCE_KINDS,
  EXCEPTION_STATUSES,
  EXCEPTION_TYPES,
  REVIEW_CADENCES,
  type BlockingExceptions,
  type ExceptionComment,
  type ExceptionQueue,
  type ReconciliationException,
} from '@closebook/reconciliation';

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

// ---- bodies and queries ------------------------------------------------------------------------

const text = (max: number) => z.string().trim().min(1).max(max);
const evidenceKind = z.enum(EVIDENCE_KINDS);
const requiredEvidence = z
  .array(z.union([evidenceKind, z.array(evidenceKind).min(1).max(EVIDENCE_KINDS.length)]))
  .max(10)
  .meta({ description: 'Each entry a kind, or a list of kinds of which one must be shown: e.g. ["note", ["credit_note", "invoice", "adjustment"]]' });
const exceptionTypes = z.array(z.enum(EXCEPTION_TYPES)).max(EXCEPTION_TYPES.length);

export const queueBody = z
  .object({
    key: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, { message: 'must be lowercase letters, digits, - or _ (at most 63)' }),
    name: text(200),
    owner: text(200),
    escalation_contact: text(200),
    review_cadence: z.enum(REVIEW_CADENCES),
    sla_hours: z.number().int().min(1).max(8760),
    required_evidence: requiredEvidence,
    exception_types: exceptionTypes.default([]),
  })
  .strict();

export const queueUpdateBody = z
  .object({
    name: text(200).optional(),
    owner: text(200).optional(),
    escalation_contact: text(200).optional(),
    review_cadence: z.enum(REVIEW_CADENCES).optional(),
    sla_hours: z.number().int().min(1).max(8760).optional(),
    required_evidence: requiredEvidence.optional(),
    exception_types: exceptionTypes.optional(),
  })
  .strict();

export const queueListQuery = z.object({ ...paginationQuery }).strict();

export const exceptionListQuery = z
  .object({
    ...paginationQuery,
    queue: z.string().min(1).max(100).optional().meta({ description: 'queue id or key' }),
    status: z.enum(EXCEPTION_STATUSES).optional(),
    period: periodString().optional(),
    type: z.enum(EXCEPTION_TYPES).optional(),
    check: z.string().min(1).max(100).optional(),
    assignee: z.string().min(1).max(200).optional(),
  })
  .strict();

export const assignBody = z.object({ assignee: text(200) }).strict();
export const commentBody = z.object({ body: text(10_000) }).strict();
export const waiveBody = z.object({ note: text(10_000) }).strict();
export const reopenBody = z.object({ reason: text(10_000) }).strict();

const uuid = z.uuid();
export const resolveBody = z
  .object({
    kind: z.enum(['corrected', 'accepted']),
    note: z.string().trim().max(10_000).optional(),
    evidence: z
      .object({ credit_note_id: uuid.optional(), invoice_id: uuid.optional(), ledger_entry_id: uuid.optional(), adjustment_id: uuid.optional() })
      .strict()
      .optional(),
    credit_note: z
      .object({ amount: decimalString({ maxScale: 4 }), reason: text(1000).optional() })
      .strict()
      .optional()
      .meta({ description: 'Issue a credit note for the exception’s invoice line now (kind corrected); its id becomes evidence.credit_note_id' }),
  })
  .strict();

export const disputeBody = z
  .object({
    invoice_id: uuid,
    invoice_line_id: uuid,
    reason: text(2000),
    amount: decimalString({ maxScale: 4 }).optional(),
  })
  .strict();

// ---- views ---------------------------------------------------------------------------------------

export const queueView = z.object({
  id: z.string(),
  key: z.string(),
  name: z.string(),
  owner: z.string(),
  escalation_contact: z.string(),
  review_cadence: z.string(),
  sla_hours: z.number(),
  required_evidence: z.array(z.union([z.string(), z.array(z.string())])),
  exception_types: z.array(z.string()),
  created_at: z.string(),
  updated_at: z.string(),
});

export const presentQueue = (q: ExceptionQueue) => ({
  id: q.id,
  key: q.key,
  name: q.name,
  owner: q.owner,
  escalation_contact: q.escalationContact,
  review_cadence: q.reviewCadence,
  sla_hours: q.slaHours,
  required_evidence: q.requiredEvidence,
  exception_types: q.exceptionTypes,
  created_at: iso(q.createdAt)!,
  updated_at: iso(q.updatedAt)!,
});

const evidenceView = z.object({
  credit_note_id: z.string().optional(),
  invoice_id: z.string().optional(),
  ledger_entry_id: z.string().optional(),
  adjustment_id: z.string().optional(),
});

export const exceptionView = z.object({
  id: z.string(),
  queue_id: z.string(),
  type: z.enum(EXCEPTION_TYPES),
  check_key: z.string(),
  item_key: z.string(),
  period: z.string(),
  status: z.enum(EXCEPTION_STATUSES),
  title: z.string(),
  currency: z.string().nullable(),
  expected: z.string().nullable().meta({ description: 'decimal string (money in `currency`, or a count)' }),
  actual: z.string().nullable(),
  variance: z.string().nullable(),
  tolerance: z.record(z.string(), z.unknown()).nullable(),
  details: z.record(z.string(), z.unknown()),
  invoice_id: z.string().nullable(),
  invoice_line_id: z.string().nullable(),
  subscription_id: z.string().nullable(),
  customer_id: z.string().nullable(),
  assignee: z.string().nullable(),
  escalated: z.boolean(),
  escalated_at: z.string().nullable(),
  sla_due_at: z.string(),
  opened_at: z.string(),
  resolved_at: z.string().nullable(),
  resolution_kind: z.enum(['auto', 'corrected', 'accepted']).nullable(),
  resolution_note: z.string().nullable(),
  evidence: evidenceView.nullable(),
  past_resolutions: z.array(z.record(z.string(), z.unknown())),
  reopen_count: z.number(),
  run_id: z.string().nullable(),
  last_seen_at: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const presentException = (e: ReconciliationException) => ({
  id: e.id,
  queue_id: e.queueId,
  type: e.type,
  check_key: e.checkKey,
  item_key: e.itemKey,
  period: e.period,
  status: e.status,
  title: e.title,
  currency: e.currency ?? null,
  expected: e.expected ?? null,
  actual: e.actual ?? null,
  variance: e.variance ?? null,
  tolerance: e.tolerance ?? null,
  details: e.details ?? {},
  invoice_id: e.invoiceId ?? null,
  invoice_line_id: e.invoiceLineId ?? null,
  subscription_id: e.subscriptionId ?? null,
  customer_id: e.customerId ?? null,
  assignee: e.assignee ?? null,
  escalated: e.escalated,
  escalated_at: iso(e.escalatedAt),
  sla_due_at: iso(e.slaDueAt)!,
  opened_at: iso(e.openedAt)!,
  resolved_at: iso(e.resolvedAt),
  resolution_kind: e.resolutionKind ?? null,
  resolution_note: e.resolutionNote ?? null,
  evidence: e.evidence ?? null,
  past_resolutions: (e.pastResolutions ?? []) as unknown as Record<string, unknown>[],
  reopen_count: e.reopenCount,
  run_id: e.runId ?? null,
  last_seen_at: iso(e.lastSeenAt)!,
  created_at: iso(e.createdAt)!,
  updated_at: iso(e.updatedAt)!,
});

export const commentView = z.object({ id: z.string(), exception_id: z.string(), author: z.string(), author_key_id: z.string().nullable(), body: z.string(), created_at: z.string() });

export const presentComment = (c: ExceptionComment) => ({
  id: c.id,
  exception_id: c.exceptionId,
  author: c.author,
  author_key_id: c.authorKeyId ?? null,
  body: c.body,
  created_at: iso(c.createdAt)!,
});

export const exceptionDetailView = exceptionView.extend({
  queue: z.object({ id: z.string(), key: z.string(), name: z.string(), owner: z.string(), escalation_contact: z.string(), review_cadence: z.string(), sla_hours: z.number(), required_evidence: queueView.shape.required_evidence }),
  comments: z.array(commentView),
});

export const presentDetail = (d: { exception: ReconciliationException; queue: ExceptionQueue; comments: ExceptionComment[] }) => ({
  ...presentException(d.exception),
  queue: {
    id: d.queue.id,
    key: d.queue.key,
    name: d.queue.name,
    owner: d.queue.owner,
    escalation_contact: d.queue.escalationContact,
    review_cadence: d.queue.reviewCadence,
    sla_hours: d.queue.slaHours,
    required_evidence: d.queue.requiredEvidence,
  },
  comments: d.comments.map(presentComment),
});

export const blockingView = z.object({
  period: z.string(),
  total: z.number(),
  open: z.number(),
  assigned: z.number(),
  escalated: z.number(),
  queues: z.array(z.object({ id: z.string(), key: z.string(), name: z.string(), owner: z.string(), escalation_contact: z.string(), count: z.number() })),
  exceptions: z.array(exceptionView),
});

export const presentBlocking = (b: BlockingExceptions) => ({
  period: b.period,
  total: b.total,
  open: b.open,
  assigned: b.assigned,
  escalated: b.escalated,
  queues: b.queues.map((q) => ({ id: q.id, key: q.key, name: q.name, owner: q.owner, escalation_contact: q.escalationContact, count: q.count })),
  exceptions: b.exceptions.map(presentException),
});

export const disputeView = exceptionView.extend({ created: z.boolean() });
