import { Injectable } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import {
  afterCursor,
  AuditService,
  decodeCursor,
  isUuid,
  NotFoundError,
  OutboxService,
  RequestScopes,
  UnprocessableError,
  ValidationError,
  type OutboxEvent,
  type WebhookEventType,
} from '@closebook/platform';
import { CreditNotesService, LateUsageService } from '@closebook/invoicing';
import { ExceptionQueue } from './entities/exception-queue.entity';
import { ReconciliationException, type PastResolution } from './entities/exception.entity';
import { ExceptionComment } from './entities/exception-comment.entity';
import { ExceptionQueuesService, type RoutedQueue } from './exception-queues.service';
import {
  ACTIVE_STATUSES,
  DEFAULT_EXCEPTION_CAP,
  EVIDENCE_FIELDS,
  EVIDENCE_KINDS,
  PERIOD_RE,
  SUMMARY_ITEM_KEY,
  SUMMARY_SAMPLE,
  type Evidence,
  type EvidenceKind,
  type EvidenceRequirement,
  type ExceptionStatus,
  type ExceptionType,
} from './model';
import { emitAll } from './outbox-bulk';

/** References an exception may carry to the documents it is about. */
export interface ExceptionRefs {
  invoice_id?: string | null;
  invoice_line_id?: string | null;
  subscription_id?: string | null;
  customer_id?: string | null;
}

/** One item over tolerance, as a check reports it. Figures are decimal strings (money or counts). */
export interface RecordInput {
  organizationId: string;
  checkKey: string;
  itemKey: string;
  /** `YYYY-MM`. */
  period: string;
  type: ExceptionType;
  title: string;
  currency?: string | null;
  expected?: string | null;
  actual?: string | null;
  variance?: string | null;
  tolerance?: Record<string, unknown> | null;
  details?: Record<string, unknown> | null;
  refs?: ExceptionRefs;
  runId?: string | null;
  /** For `type: 'summary'`: whose queue it goes to (default: billing_variance's). */
  routeAs?: Exclude<ExceptionType, 'summary'>;
}

export interface RecordResult {
  exception: ReconciliationException;
  created: boolean;
  reopened: boolean;
}

/** An item of recordMany: the run-wide fields come from the options (they may be repeated, but must agree). */
export type RecordManyItem = Omit<RecordInput, 'organizationId' | 'checkKey' | 'period' | 'runId'> & Partial<Pick<RecordInput, 'organizationId' | 'checkKey' | 'period' | 'runId'>>;

export interface RecordManyOptions {
  organizationId: string;
  checkKey: string;
  period: string;
  runId?: string | null;
  /** New items this call may open before it opens one summary exception instead (default 500). */
  cap?: number;
}

export interface RecordManyResult {
  /** New exceptions opened (0 when summarized). */
  created: number;
  /** Existing exceptions whose figures were refreshed (including reopened ones). */
  updated: number;
  reopened: number;
  /** New items found (opened, or counted in the summary). */
  newItems: number;
  /** Set when the new items exceeded the cap: the one summary exception opened (or updated) instead. */
  summary: RecordResult | null;
}

export interface AutoResolveInput {
  organizationId: string;
  checkKey: string;
  period: string;
  /** Items known to pass: only these are resolved. `'all-not-in'` or absent: every item not in failingItemKeys. */
  passingItemKeys?: string[] | 'all-not-in';
  /** Items failing in this run: never resolved. */
  failingItemKeys?: string[];
  /** The run: an item it recorded (run_id = runId) is failing in it and never resolved by it. */
  runId?: string | null;
}

export interface BlockingQueue {
  id: string;
  key: string;
  name: string;
  owner: string;
  escalationContact: string;
  count: number;
}

export interface BlockingExceptions {
  period: string;
  total: number;
  open: number;
  assigned: number;
  escalated: number;
  queues: BlockingQueue[];
  /** The blocking items, oldest first (at most `limit`). */
  exceptions: ReconciliationException[];
}

export interface ResolveInput {
  kind: 'corrected' | 'accepted';
  note?: string | null;
  evidence?: Evidence;
  /** A dispute (or any exception on an invoice line) corrected by a credit note issued now, in the same transaction. */
  credit_note?: { amount: string; reason?: string };
}

export interface ExceptionDetail {
  exception: ReconciliationException;
  queue: ExceptionQueue;
  comments: ExceptionComment[];
}

export interface ExceptionListQuery {
  limit: number;
  cursor?: string;
  queue?: string;
  status?: ExceptionStatus;
  period?: string;
  type?: ExceptionType;
  check?: string;
  assignee?: string;
}

/** The row an upsert returns: enough for the audit entry and the webhook. */
interface UpsertedRow {
  id: string;
  organization_id: string;
  queue_id: string;
  type: ExceptionType;
  check_key: string;
  item_key: string;
  period: string;
  status: ExceptionStatus;
  title: string;
  reopen_count: number;
  created: boolean;
  previous_status: ExceptionStatus | null;
  previous_kind: string | null;
}

const CHUNK = 1000;

/** Reopen an existing row when it was closed and is failing again: auto-resolved, or with other figures. */
const REOPEN = `(e.status in ('resolved', 'waived') and (e.resolution_kind is not distinct from 'auto'
  or (e.currency, e.expected, e.actual, e.variance) is distinct from (excluded.currency, excluded.expected, excluded.actual, excluded.variance)))`;

const UPSERT_SQL = `
with input as (
  select x.* from jsonb_to_recordset(?::jsonb) as x(
    id uuid, queue_id uuid, sla_hours int, type text, check_key text, item_key text, period text, title text, currency text,
    expected numeric, actual numeric, variance numeric, tolerance jsonb, details jsonb,
    invoice_id uuid, invoice_line_id uuid, subscription_id uuid, customer_id uuid, run_id uuid)
),
prev as (
  select p.id, p.status, p.resolution_kind from exceptions p
  join input i on p.organization_id = ?::uuid and p.check_key = i.check_key and p.item_key = i.item_key and p.period = i.period
)
insert into exceptions as e (id, created_at, updated_at, organization_id, queue_id, type, check_key, item_key, period, status, title,
  currency, expected, actual, variance, tolerance, details, invoice_id, invoice_line_id, subscription_id, customer_id,
  escalated, sla_due_at, opened_at, run_id, last_seen_at, past_resolutions, reopen_count)
select i.id, now(), now(), ?::uuid, i.queue_id, i.type, i.check_key, i.item_key, i.period, 'open', i.title,
  i.currency, i.expected, i.actual, i.variance, i.tolerance, coalesce(i.details, '{}'::jsonb), i.invoice_id, i.invoice_line_id, i.subscription_id, i.customer_id,
  false, now() + make_interval(hours => i.sla_hours), now(), i.run_id, now(), '[]'::jsonb, 0
from input i
on conflict (organization_id, check_key, item_key, period) do update set
  title = excluded.title,
  currency = excluded.currency, expected = excluded.expected, actual = excluded.actual, variance = excluded.variance,
  tolerance = excluded.tolerance, details = excluded.details,
  invoice_id = coalesce(excluded.invoice_id, e.invoice_id), invoice_line_id = coalesce(excluded.invoice_line_id, e.invoice_line_id),
  subscription_id = coalesce(excluded.subscription_id, e.subscription_id), customer_id = coalesce(excluded.customer_id, e.customer_id),
  run_id = coalesce(excluded.run_id, e.run_id), last_seen_at = now(), updated_at = now(),
  status = case when ${REOPEN} then (case when e.assignee is not null then 'assigned' else 'open' end) else e.status end,
  resolution_kind = case when ${REOPEN} then null else e.resolution_kind end,
  resolution_note = case when ${REOPEN} then null else e.resolution_note end,
  evidence = case when ${REOPEN} then null else e.evidence end,
  resolved_at = case when ${REOPEN} then null else e.resolved_at end,
  escalated = case when ${REOPEN} then false else e.escalated end,
  escalated_at = case when ${REOPEN} then null else e.escalated_at end,
  sla_due_at = case when ${REOPEN} then now() + make_interval(hours => (select q.sla_hours from exception_queues q where q.id = e.queue_id)) else e.sla_due_at end,
  reopen_count = case when ${REOPEN} then e.reopen_count + 1 else e.reopen_count end,
  past_resolutions = case when ${REOPEN} then e.past_resolutions || jsonb_build_array(jsonb_build_object(
    'status', e.status, 'resolution_kind', e.resolution_kind, 'resolution_note', e.resolution_note, 'evidence', e.evidence,
    'resolved_at', e.resolved_at, 'reopened_at', now(),
    'reopen_reason', case when e.resolution_kind is not distinct from 'auto' then 'failing again' else 'figures changed' end)) else e.past_resolutions end
returning e.id, e.organization_id, e.queue_id, e.type, e.check_key, e.item_key, e.period, e.status, e.title, e.reopen_count,
  (e.xmax = 0) as created,
  (select p.status from prev p where p.id = e.id) as previous_status,
  (select p.resolution_kind from prev p where p.id = e.id) as previous_kind`;

const nul = <T>(v: T | undefined | null): T | null => (v === undefined ? null : v);

/**
 * Exceptions (SPEC §6): what reconciliation runs record (set-based upserts keyed by check, item and
 * period), their automatic resolution by a later passing run of the same check and period, the
 * close blockers, and the human lifecycle (assign, comment, resolve with evidence, waive, reopen),
 * SLA escalation. Every transition is audited and announced through the outbox in its transaction.
 */
@Injectable()
export class ExceptionsService {
  constructor(
    private readonly queues: ExceptionQueuesService,
    private readonly audit: AuditService,
    private readonly outbox: OutboxService,
    private readonly lateUsage: LateUsageService,
    private readonly creditNotes: CreditNotesService,
  ) {}

  // ---- what reconciliation runs call -------------------------------------------------------------

  /** Records one item over tolerance: opens it, refreshes it, or reopens it (see docs/exceptions.md). */
  async record(em: EntityManager, input: RecordInput): Promise<RecordResult> {
    this.checkInput(input, 'input');
    return em.transactional(async (tx) => {
      const routing = await this.queues.routing(tx, input.organizationId);
      const [row] = await this.upsert(tx, input.organizationId, [this.toRow(input, routing)]);
      await this.announce(tx, [row], routing, input.runId ?? null);
      const exception = await tx.findOneOrFail(ReconciliationException, { id: row.id }, { refresh: true });
      return { exception, created: row.created, reopened: this.wasReopened(row) };
    });
  }

  /**
   * Records a run's failing items of one check and period in batches. When more than `cap` of them
   * are new, none of the new ones is opened: one summary exception (item `summary`) lists their
   * count and the first 50, while the items already open are still refreshed.
   */
  async recordMany(em: EntityManager, inputs: RecordManyItem[], opts: RecordManyOptions): Promise<RecordManyResult> {
    const cap = opts.cap ?? DEFAULT_EXCEPTION_CAP;
    if (!PERIOD_RE.test(opts.period)) throw new ValidationError('invalid_period', 'period must be a month as YYYY-MM', 'period');
    // One row per item (the last report of an item wins): one statement cannot update a row twice.
    const byItem = new Map<string, RecordInput>();
    inputs.forEach((item, i) => {
      for (const k of ['organizationId', 'checkKey', 'period'] as const) {
        if (item[k] !== undefined && item[k] !== opts[k]) throw new ValidationError('mismatched_item', `inputs[${i}].${k} differs from the run's`, `inputs[${i}].${k}`);
      }
      const full: RecordInput = { ...item, organizationId: opts.organizationId, checkKey: opts.checkKey, period: opts.period, runId: item.runId ?? opts.runId ?? null };
      this.checkInput(full, `inputs[${i}]`);
      byItem.set(full.itemKey, full);
    });
    const items = [...byItem.values()];
    return em.transactional(async (tx) => {
      const routing = await this.queues.routing(tx, opts.organizationId);
      const existing = new Set<string>();
      for (let i = 0; i < items.length; i += CHUNK * 10) {
        const keys = items.slice(i, i + CHUNK * 10).map((x) => x.itemKey);
        const rows = await tx.execute<{ item_key: string }[]>(
          `select item_key from exceptions where organization_id = ? and check_key = ? and period = ? and item_key in (select jsonb_array_elements_text(?::jsonb))`,
          [opts.organizationId, opts.checkKey, opts.period, JSON.stringify(keys)],
        );
        for (const r of rows) existing.add(r.item_key);
      }
      const fresh = items.filter((x) => !existing.has(x.itemKey));
      const summarize = fresh.length > cap;
      const toWrite = summarize ? items.filter((x) => existing.has(x.itemKey)) : items;
      const written: UpsertedRow[] = [];
      for (let i = 0; i < toWrite.length; i += CHUNK) {
        written.push(...(await this.upsert(tx, opts.organizationId, toWrite.slice(i, i + CHUNK).map((x) => this.toRow(x, routing)))));
      }
      await this.announce(tx, written, routing, opts.runId ?? null);
      let summary: RecordResult | null = null;
      if (summarize) {
        const types = [...new Set(fresh.map((x) => x.type).filter((t): t is Exclude<ExceptionType, 'summary'> => t !== 'summary'))];
        const summaryInput: RecordInput = {
          organizationId: opts.organizationId,
          checkKey: opts.checkKey,
          itemKey: SUMMARY_ITEM_KEY,
          period: opts.period,
          type: 'summary',
          routeAs: types[0] ?? 'billing_variance',
          title: `${opts.checkKey} ${opts.period}: ${fresh.length} new items over tolerance (more than the cap of ${cap}); listed in one summary`,
          actual: String(fresh.length),
          details: {
            cap,
            new_items: fresh.length,
            existing_items: toWrite.length,
            types,
            sample: fresh.slice(0, SUMMARY_SAMPLE).map((x) => ({
              item_key: x.itemKey,
              type: x.type,
              title: x.title,
              currency: nul(x.currency),
              expected: nul(x.expected),
              actual: nul(x.actual),
              variance: nul(x.variance),
            })),
          },
          runId: opts.runId ?? null,
        };
        const [row] = await this.upsert(tx, opts.organizationId, [this.toRow(summaryInput, routing)]);
        await this.announce(tx, [row], routing, opts.runId ?? null);
        summary = { exception: await tx.findOneOrFail(ReconciliationException, { id: row.id }, { refresh: true }), created: row.created, reopened: this.wasReopened(row) };
      }
      return {
        created: written.filter((r) => r.created).length,
        updated: written.filter((r) => !r.created).length,
        reopened: written.filter((r) => this.wasReopened(r)).length,
        newItems: fresh.length,
        summary,
      };
    });
  }

  /**
   * Resolves (kind `auto`) the open and assigned exceptions of this check and this period whose
   * items pass now. Never another period's, never an item failing in this run (listed in
   * failingItemKeys, or recorded by this run).
   */
  async autoResolve(em: EntityManager, input: AutoResolveInput): Promise<{ resolved: number; itemKeys: string[] }> {
    if (!PERIOD_RE.test(input.period)) throw new ValidationError('invalid_period', 'period must be a month as YYYY-MM', 'period');
    const passing = Array.isArray(input.passingItemKeys) ? input.passingItemKeys : null;
    if (passing && passing.length === 0) return { resolved: 0, itemKeys: [] };
    const failing = input.failingItemKeys ?? [];
    const runId = input.runId ?? null;
    return em.transactional(async (tx) => {
      const rows = await tx.execute<(UpsertedRow & { queue_key: string })[]>(
        `update exceptions e set status = 'resolved', resolution_kind = 'auto', resolved_at = now(), updated_at = now(), last_seen_at = now(),
                resolution_note = ?, run_id = coalesce(?::uuid, e.run_id)
         from exception_queues q
         where q.id = e.queue_id and e.organization_id = ? and e.check_key = ? and e.period = ? and e.status in ('open', 'assigned')
           and (?::uuid is null or e.run_id is null or e.run_id <> ?::uuid)
           and not (e.item_key in (select jsonb_array_elements_text(?::jsonb)))
           and (?::jsonb is null or e.item_key in (select jsonb_array_elements_text(?::jsonb)))
         returning e.id, e.organization_id, e.queue_id, q.key as queue_key, e.type, e.check_key, e.item_key, e.period, e.status, e.title, e.reopen_count`,
        [
          runId ? `passed in reconciliation run ${runId}` : 'passed in a later run of the check',
          runId,
          input.organizationId,
          input.checkKey,
          input.period,
          runId,
          runId,
          JSON.stringify(failing),
          passing ? JSON.stringify(passing) : null,
          passing ? JSON.stringify(passing) : null,
        ],
      );
      const events: OutboxEvent[] = [];
      for (const r of rows) {
        this.audit.record(tx, {
          organizationId: r.organization_id,
          action: 'exception.resolved',
          resourceType: 'exception',
          resourceId: r.id,
          data: { from: 'open', to: 'resolved', resolution_kind: 'auto', run_id: runId, check_key: r.check_key, item_key: r.item_key, period: r.period },
        });
        events.push({
          organizationId: r.organization_id,
          type: 'exception.resolved',
          payload: { ...this.payloadOf(r, r.queue_key), resolution_kind: 'auto', run_id: runId },
          dedupeKey: `exception.resolved:${r.id}:${r.reopen_count}`,
        });
      }
      await emitAll(tx, events);
      return { resolved: rows.length, itemKeys: rows.map((r) => r.item_key) };
    });
  }

  /** What blocks the close of `period`: its open and assigned exceptions, with counts per queue. */
  async blocking(em: EntityManager, organizationId: string, period: string, opts: { limit?: number } = {}): Promise<BlockingExceptions> {
    if (!PERIOD_RE.test(period)) throw new ValidationError('invalid_period', 'period must be a month as YYYY-MM', 'period');
    const [counts] = await em.execute<{ total: number; open: number; assigned: number; escalated: number }[]>(
      `select count(*)::int as total, count(*) filter (where status = 'open')::int as open, count(*) filter (where status = 'assigned')::int as assigned,
              count(*) filter (where escalated)::int as escalated
       from exceptions where organization_id = ? and period = ? and status in ('open', 'assigned')`,
      [organizationId, period],
    );
    const queues = await em.execute<{ id: string; key: string; name: string; owner: string; escalation_contact: string; count: number }[]>(
      `select q.id, q.key, q.name, q.owner, q.escalation_contact, count(*)::int as count
       from exceptions e join exception_queues q on q.id = e.queue_id
       where e.organization_id = ? and e.period = ? and e.status in ('open', 'assigned')
       group by q.id, q.key, q.name, q.owner, q.escalation_contact order by q.key`,
      [organizationId, period],
    );
    const exceptions = await em.find(
      ReconciliationException,
      { organizationId, period, status: { $in: [...ACTIVE_STATUSES] } },
      { orderBy: { openedAt: 'asc', id: 'asc' }, limit: opts.limit ?? 200 },
    );
    return {
      period,
      total: counts?.total ?? 0,
      open: counts?.open ?? 0,
      assigned: counts?.assigned ?? 0,
      escalated: counts?.escalated ?? 0,
      queues: queues.map((q) => ({ id: q.id, key: q.key, name: q.name, owner: q.owner, escalationContact: q.escalation_contact, count: q.count })),
      exceptions,
    };
  }

  /** The exception of (check, item, period), if any. */
  async findByKey(em: EntityManager, organizationId: string, checkKey: string, itemKey: string, period: string): Promise<ReconciliationException | null> {
    return em.findOne(ReconciliationException, { organizationId, checkKey, itemKey, period });
  }

  // ---- reads ---------------------------------------------------------------------------------------

  /** Newest first; fetch `limit + 1` rows for `toPage`. `queue` is a queue id or key. */
  async list(em: EntityManager, organizationId: string, q: ExceptionListQuery): Promise<ReconciliationException[]> {
    const where: Record<string, unknown> = { organizationId, ...afterCursor(decodeCursor(q.cursor)) };
    if (q.queue) where.queueId = (await this.queues.get(em, organizationId, q.queue)).id;
    if (q.status) where.status = q.status;
    if (q.period) where.period = q.period;
    if (q.type) where.type = q.type;
    if (q.check) where.checkKey = q.check;
    if (q.assignee) where.assignee = q.assignee;
    return em.find(ReconciliationException, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 });
  }

  async find(em: EntityManager, organizationId: string, id: string, lock = false): Promise<ReconciliationException> {
    const found = isUuid(id)
      ? await em.findOne(ReconciliationException, { id, organizationId }, lock ? { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true } : {})
      : null;
    if (!found) throw new NotFoundError('exception', id);
    return found;
  }

  async get(em: EntityManager, organizationId: string, id: string): Promise<ExceptionDetail> {
    const exception = await this.find(em, organizationId, id);
    const [queue, comments] = await Promise.all([
      em.findOneOrFail(ExceptionQueue, { id: exception.queueId }),
      em.find(ExceptionComment, { exceptionId: exception.id }, { orderBy: { createdAt: 'asc', id: 'asc' } }),
    ]);
    return { exception, queue, comments };
  }

  // ---- lifecycle -------------------------------------------------------------------------------------

  /** `open | assigned → assigned` (reassigning is allowed). */
  async assign(em: EntityManager, organizationId: string, id: string, assignee: string): Promise<ExceptionDetail> {
    await em.transactional(async (tx) => {
      const ex = await this.find(tx, organizationId, id, true);
      this.assertActive(ex, 'assign');
      const from = ex.status;
      const previous = ex.assignee ?? null;
      ex.status = 'assigned';
      ex.assignee = assignee;
      ex.updatedAt = new Date();
      await this.transition(tx, ex, 'exception.assigned', { from, to: 'assigned', assignee, previous_assignee: previous });
    });
    return this.get(em, organizationId, id);
  }

  /** A comment, in any status. */
  async comment(em: EntityManager, organizationId: string, id: string, body: string): Promise<ExceptionComment> {
    return em.transactional(async (tx) => {
      const ex = await this.find(tx, organizationId, id, true);
      const principal = RequestScopes.current()?.principal;
      const comment = tx.create(ExceptionComment, { organizationId, exceptionId: ex.id, authorKeyId: principal?.keyId ?? null, author: principal?.actor ?? 'system', body });
      ex.updatedAt = new Date();
      this.audit.record(tx, { organizationId, action: 'exception.commented', resourceType: 'exception', resourceId: ex.id, data: { comment_id: comment.id } });
      await tx.flush();
      return comment;
    });
  }

  /**
   * `open | assigned → resolved` as `corrected` or `accepted`, with the evidence its queue requires
   * (422 `evidence_required` listing what is missing; nothing changes). A late-usage item corrected
   * is billed (its adjustment becomes the evidence); `credit_note` issues a credit note for the
   * exception's invoice line in the same transaction.
   */
  async resolve(em: EntityManager, organizationId: string, id: string, input: ResolveInput): Promise<ExceptionDetail> {
    await em.transactional(async (tx) => {
      const ex = await this.find(tx, organizationId, id, true);
      this.assertActive(ex, 'resolve');
      const queue = await tx.findOneOrFail(ExceptionQueue, { id: ex.queueId });
      const note = input.note?.trim() || null;
      const evidence: Evidence = { ...(input.evidence ?? {}) };
      // The note is checked before anything is issued, so a refused resolution issues nothing.
      const noteMissing = this.requirementsFor(queue.requiredEvidence, input.kind).some((r) => r === 'note') && !note;
      if (noteMissing) this.refuseEvidence(queue, ['note'], []);
      if (input.credit_note) {
        if (input.kind !== 'corrected') throw new UnprocessableError('credit_note_requires_corrected', 'a credit note corrects: resolve with kind "corrected"', 'credit_note');
        if (!ex.invoiceId || !ex.invoiceLineId) throw new UnprocessableError('no_invoice_line', `exception ${ex.id} is not about an invoice line`, 'credit_note');
        if (evidence.credit_note_id) throw new ValidationError('conflicting_evidence', 'give evidence.credit_note_id or credit_note, not both', 'credit_note');
        const issued = await this.creditNotes.create(tx, organizationId, ex.invoiceId, {
          reason: input.credit_note.reason ?? note ?? ex.title,
          lines: [{ invoice_line_id: ex.invoiceLineId, amount: input.credit_note.amount }],
        });
        evidence.credit_note_id = issued.creditNote.id;
      }
      if (ex.type === 'late_usage' && input.kind === 'corrected') {
        const { pendingItem } = await this.lateUsage.bill(tx, organizationId, ex.itemKey);
        if (evidence.adjustment_id && evidence.adjustment_id !== pendingItem.id) {
          throw new ValidationError('conflicting_evidence', `late usage is billed by adjustment ${pendingItem.id}`, 'evidence.adjustment_id');
        }
        evidence.adjustment_id = pendingItem.id;
      }
      await this.checkEvidence(tx, organizationId, queue, input.kind, note, evidence);
      if (ex.type === 'late_usage' && input.kind === 'accepted') await this.lateUsage.waive(tx, organizationId, ex.itemKey);
      const from = ex.status;
      ex.status = 'resolved';
      ex.resolutionKind = input.kind;
      ex.resolutionNote = note;
      ex.evidence = evidence;
      ex.resolvedAt = new Date();
      ex.updatedAt = new Date();
      await this.transition(tx, ex, 'exception.resolved', { from, to: 'resolved', resolution_kind: input.kind, note, evidence }, `exception.resolved:${ex.id}:${ex.reopenCount}`);
    });
    return this.get(em, organizationId, id);
  }

  /** `open | assigned → waived`, with a note. A late-usage item's late usage is waived too (never billed). */
  async waive(em: EntityManager, organizationId: string, id: string, note: string): Promise<ExceptionDetail> {
    await em.transactional(async (tx) => {
      const ex = await this.find(tx, organizationId, id, true);
      this.assertActive(ex, 'waive');
      if (ex.type === 'late_usage') await this.lateUsage.waive(tx, organizationId, ex.itemKey);
      const from = ex.status;
      ex.status = 'waived';
      ex.resolutionKind = null;
      ex.resolutionNote = note;
      ex.evidence = null;
      ex.resolvedAt = new Date();
      ex.updatedAt = new Date();
      await this.transition(tx, ex, 'exception.waived', { from, to: 'waived', note }, `exception.waived:${ex.id}:${ex.reopenCount}`);
    });
    return this.get(em, organizationId, id);
  }

  /**
   * `resolved | waived → open` (or `assigned` when it has an assignee), with a reason. The past
   * resolution is kept in `past_resolutions` (accepted evidence stays as it was); the SLA restarts.
   */
  async reopen(em: EntityManager, organizationId: string, id: string, reason: string): Promise<ExceptionDetail> {
    await em.transactional(async (tx) => {
      const ex = await this.find(tx, organizationId, id, true);
      if (ex.status !== 'resolved' && ex.status !== 'waived') {
        throw new UnprocessableError('exception_not_closed', `exception ${ex.id} is ${ex.status}; only a resolved or waived exception can be reopened`, undefined, { status: ex.status });
      }
      const queue = await tx.findOneOrFail(ExceptionQueue, { id: ex.queueId });
      if (ex.type === 'late_usage' && ex.status === 'waived') await this.lateUsage.unwaive(tx, organizationId, ex.itemKey);
      if (ex.type === 'late_usage' && ex.status === 'resolved' && ex.resolutionKind === 'accepted') await this.lateUsage.unwaive(tx, organizationId, ex.itemKey);
      const now = new Date();
      const past: PastResolution = {
        status: ex.status,
        resolution_kind: ex.resolutionKind ?? null,
        resolution_note: ex.resolutionNote ?? null,
        evidence: ex.evidence ?? null,
        resolved_at: ex.resolvedAt ? ex.resolvedAt.toISOString() : null,
        reopened_at: now.toISOString(),
        reopen_reason: reason,
      };
      const from = ex.status;
      ex.pastResolutions = [...ex.pastResolutions, past];
      ex.status = ex.assignee ? 'assigned' : 'open';
      ex.resolutionKind = null;
      ex.resolutionNote = null;
      ex.evidence = null;
      ex.resolvedAt = null;
      ex.escalated = false;
      ex.escalatedAt = null;
      ex.slaDueAt = new Date(now.getTime() + queue.slaHours * 3_600_000);
      ex.reopenCount += 1;
      ex.updatedAt = now;
      await this.transition(tx, ex, 'exception.reopened', { from, to: ex.status, reason, past_resolution: past }, `exception.reopened:${ex.id}:${ex.reopenCount}`);
    });
    return this.get(em, organizationId, id);
  }

  /**
   * Flags the open and assigned exceptions past their SLA (every organization): `escalated`,
   * `escalated_at`, audit, `exception.escalated` — once per item (and again only after a reopening).
   */
  async escalateDue(em: EntityManager, now: Date = new Date(), limit = 1000): Promise<number> {
    return em.transactional(async (tx) => {
      const rows = await tx.execute<(UpsertedRow & { queue_key: string; escalation_contact: string; owner: string; sla_due_at: Date })[]>(
        `update exceptions e set escalated = true, escalated_at = ?, updated_at = now()
         from exception_queues q
         where q.id = e.queue_id and e.id in (select id from exceptions where status in ('open', 'assigned') and not escalated and sla_due_at <= ?
                                              order by sla_due_at limit ? for update skip locked)
         returning e.id, e.organization_id, e.queue_id, q.key as queue_key, q.owner, q.escalation_contact, e.type, e.check_key, e.item_key, e.period,
                   e.status, e.title, e.reopen_count, e.sla_due_at`,
        [now, now, limit],
      );
      const events: OutboxEvent[] = [];
      for (const r of rows) {
        const data = { escalation_contact: r.escalation_contact, owner: r.owner, sla_due_at: new Date(r.sla_due_at).toISOString(), escalated_at: now.toISOString() };
        this.audit.record(tx, { organizationId: r.organization_id, action: 'exception.escalated', resourceType: 'exception', resourceId: r.id, data });
        events.push({ organizationId: r.organization_id, type: 'exception.escalated', payload: { ...this.payloadOf(r, r.queue_key), ...data }, dedupeKey: `exception.escalated:${r.id}:${r.reopen_count}` });
      }
      await emitAll(tx, events);
      return rows.length;
    });
  }

  // ---- internals ---------------------------------------------------------------------------------------

  private checkInput(input: RecordInput, field: string) {
    if (!input.checkKey || !input.itemKey) throw new ValidationError('missing_key', 'checkKey and itemKey are required', `${field}.itemKey`);
    if (!PERIOD_RE.test(input.period)) throw new ValidationError('invalid_period', 'period must be a month as YYYY-MM', `${field}.period`);
    for (const [k, v] of Object.entries(input.refs ?? {})) {
      if (v != null && !isUuid(v)) throw new ValidationError('invalid_ref', `${k} must be a uuid`, `${field}.refs.${k}`);
    }
    if (input.runId != null && !isUuid(input.runId)) throw new ValidationError('invalid_run_id', 'runId must be a uuid', `${field}.runId`);
  }

  private toRow(input: RecordInput, routing: Map<ExceptionType, RoutedQueue>) {
    const routeType: ExceptionType = input.type === 'summary' ? (input.routeAs ?? 'billing_variance') : input.type;
    const queue = routing.get(routeType) ?? routing.get('billing_variance');
    if (!queue) throw new Error(`no exception queue for type ${routeType}`);
    return {
      id: randomUUID(),
      queue_id: queue.id,
      sla_hours: queue.slaHours,
      type: input.type,
      check_key: input.checkKey,
      item_key: input.itemKey,
      period: input.period,
      title: input.title.slice(0, 1000),
      currency: nul(input.currency),
      expected: nul(input.expected),
      actual: nul(input.actual),
      variance: nul(input.variance),
      tolerance: nul(input.tolerance),
      details: input.details ?? {},
      invoice_id: nul(input.refs?.invoice_id),
      invoice_line_id: nul(input.refs?.invoice_line_id),
      subscription_id: nul(input.refs?.subscription_id),
      customer_id: nul(input.refs?.customer_id),
      run_id: nul(input.runId),
    };
  }

  private async upsert(em: EntityManager, organizationId: string, rows: ReturnType<ExceptionsService['toRow']>[]): Promise<UpsertedRow[]> {
    if (!rows.length) return [];
    return em.execute<UpsertedRow[]>(UPSERT_SQL, [JSON.stringify(rows), organizationId, organizationId]);
  }

  private wasReopened(r: UpsertedRow): boolean {
    return !r.created && (r.previous_status === 'resolved' || r.previous_status === 'waived') && (r.status === 'open' || r.status === 'assigned');
  }

  /** Audit + outbox for what an upsert opened or reopened. */
  private async announce(em: EntityManager, rows: UpsertedRow[], routing: Map<ExceptionType, RoutedQueue>, runId: string | null) {
    const keyOf = new Map([...routing.values()].map((q) => [q.id, q.key]));
    const events: OutboxEvent[] = [];
    for (const r of rows) {
      const queueKey = keyOf.get(r.queue_id) ?? null;
      if (r.created) {
        this.audit.record(em, { organizationId: r.organization_id, action: 'exception.opened', resourceType: 'exception', resourceId: r.id, data: { ...this.payloadOf(r, queueKey), run_id: runId } });
        events.push({ organizationId: r.organization_id, type: 'exception.opened', payload: { ...this.payloadOf(r, queueKey), run_id: runId }, dedupeKey: `exception.opened:${r.id}` });
      } else if (this.wasReopened(r)) {
        const reason = r.previous_kind === 'auto' ? 'failing again' : 'figures changed';
        this.audit.record(em, { organizationId: r.organization_id, action: 'exception.reopened', resourceType: 'exception', resourceId: r.id, data: { from: r.previous_status, to: r.status, reason, run_id: runId } });
        events.push({ organizationId: r.organization_id, type: 'exception.reopened', payload: { ...this.payloadOf(r, queueKey), reason, run_id: runId }, dedupeKey: `exception.reopened:${r.id}:${r.reopen_count}` });
      }
    }
    await emitAll(em, events);
  }

  private payloadOf(r: Pick<UpsertedRow, 'id' | 'type' | 'check_key' | 'item_key' | 'period' | 'status' | 'title'>, queueKey: string | null) {
    return { exception_id: r.id, queue: queueKey, type: r.type, check_key: r.check_key, item_key: r.item_key, period: r.period, status: r.status, title: r.title };
  }

  private assertActive(ex: ReconciliationException, action: string) {
    if (ex.status !== 'open' && ex.status !== 'assigned') {
      throw new UnprocessableError('exception_not_open', `exception ${ex.id} is ${ex.status}; only an open or assigned exception can be ${action === 'assign' ? 'assigned' : `${action}d`}`, undefined, {
        status: ex.status,
      });
    }
  }

  /** Audit + webhook of a lifecycle transition, then the flush (one transaction with the change). */
  private async transition(em: EntityManager, ex: ReconciliationException, type: WebhookEventType, data: Record<string, unknown>, dedupeKey?: string) {
    const queue = await em.findOneOrFail(ExceptionQueue, { id: ex.queueId });
    this.audit.record(em, { organizationId: ex.organizationId, action: type, resourceType: 'exception', resourceId: ex.id, data: { check_key: ex.checkKey, item_key: ex.itemKey, period: ex.period, ...data } });
    await em.flush();
    await this.outbox.emit(em, {
      organizationId: ex.organizationId,
      type,
      payload: {
        exception_id: ex.id,
        queue: queue.key,
        type: ex.type,
        check_key: ex.checkKey,
        item_key: ex.itemKey,
        period: ex.period,
        status: ex.status,
        title: ex.title,
        assignee: ex.assignee ?? null,
        resolution_kind: ex.resolutionKind ?? null,
      },
      ...(dedupeKey ? { dedupeKey } : {}),
    });
  }

  /** The requirements of a resolution: the queue's for `corrected`; a note (and nothing else) for `accepted`. */
  private requirementsFor(required: EvidenceRequirement[], kind: 'corrected' | 'accepted'): EvidenceRequirement[] {
    return kind === 'corrected' ? required : ['note'];
  }

  private async checkEvidence(em: EntityManager, organizationId: string, queue: ExceptionQueue, kind: 'corrected' | 'accepted', note: string | null, evidence: Evidence) {
    // Every document named must exist in the organization, required or not.
    const notFound: string[] = [];
    const present = new Set<EvidenceKind>(note ? ['note'] : []);
    for (const k of EVIDENCE_KINDS) {
      if (k === 'note') continue;
      const { field, table } = EVIDENCE_FIELDS[k];
      const id = evidence[field];
      if (id === undefined || id === null) continue;
      const [row] = isUuid(id) ? await em.execute<{ ok: number }[]>(`select 1 as ok from ${table} where id = ? and organization_id = ?`, [id, organizationId]) : [];
      if (row) present.add(k);
      else notFound.push(`evidence.${field}`);
    }
    const missing = this.requirementsFor(queue.requiredEvidence, kind)
      .filter((r) => (Array.isArray(r) ? !r.some((k) => present.has(k)) : !present.has(r)))
      .map((r) => (Array.isArray(r) ? r.join('|') : r));
    if (missing.length || notFound.length) this.refuseEvidence(queue, missing, notFound);
  }

  private refuseEvidence(queue: ExceptionQueue, missing: string[], notFound: string[]): never {
    const parts = [missing.length ? `missing: ${missing.join(', ')}` : null, notFound.length ? `not found in this organization: ${notFound.join(', ')}` : null].filter(Boolean);
    throw new UnprocessableError('evidence_required', `queue "${queue.key}" requires ${JSON.stringify(queue.requiredEvidence)} to resolve; ${parts.join('; ')}`, notFound[0] ?? (missing.includes('note') ? 'note' : 'evidence'), {
      missing,
      not_found: notFound,
      required_evidence: queue.requiredEvidence,
    });
  }
}
