import { Injectable, Logger } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec, Money } from '@closebook/money';
import { afterCursor, AuditService, decodeCursor, DomainError, NotFoundError, OutboxService, UnprocessableError, type AuditRecord, type OutboxEvent } from '@closebook/platform';
import { RollupsService, stalePairsOf } from '@closebook/metering';
import { CustomersService } from '@closebook/subscriptions';
import { Invoice, type InvoiceKind, type InvoiceStatus } from './entities/invoice.entity';
import { InvoiceLine } from './entities/invoice-line.entity';
import { InvoiceRollup } from './entities/invoice-rollup.entity';
import { CreditNote } from './entities/credit-note.entity';
import { Payment } from './entities/payment.entity';
import { InvoicingEvents, type FinalizedLine } from './invoicing-events';
import { reserveDocumentNumbers } from './document-numbers';
import { PeriodRatingService } from './rating/period-rating.service';
import { lockSubscriptions, PERIOD_INVOICE_STALE } from './rating/invoice-content';

/** Days from finalization to the due date (net 30). */
export const PAYMENT_TERMS_DAYS = 30;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface InvoiceListQuery {
  limit: number;
  cursor?: string;
  /** YYYY-MM: invoices whose period starts in that month (UTC). */
  period?: string;
  /** Customer id or external id. */
  customer?: string;
  status?: InvoiceStatus;
  kind?: InvoiceKind;
  subscription?: string;
}

export interface InvoiceBalance {
  credited: string;
  paid: string;
  due: string;
}

export interface InvoiceDetail {
  invoice: Invoice;
  lines: InvoiceLine[];
  rollups: InvoiceRollup[];
  balance: InvoiceBalance;
  creditNotes: CreditNote[];
  payments: Payment[];
}

export interface FinalizeResult {
  invoice: Invoice;
  /** False when the invoice was not a draft any more (finalizing twice is one transition). */
  transitioned: boolean;
}

/**
 * Invoices as documents (SPEC §4): reading them, and the one-way draft → finalized transition —
 * after re-rating a period draft whose rollups changed, in order per subscription, audited, with
 * `invoice.finalized` in the outbox and the posting hooks, all in one transaction.
 */
@Injectable()
export class InvoicesService {
  private readonly logger = new Logger('InvoicesService');

  constructor(
    private readonly audit: AuditService,
    private readonly outbox: OutboxService,
    private readonly events: InvoicingEvents,
    private readonly rating: PeriodRatingService,
    private readonly rollups: RollupsService,
    private readonly customers: CustomersService,
  ) {}

  /** An invoice of the organization (404 for another organization's or an unknown id). */
  async find(em: EntityManager, organizationId: string, id: string): Promise<Invoice> {
    const inv = UUID_RE.test(id) ? await em.findOne(Invoice, { id, organizationId }) : null;
    if (!inv) throw new NotFoundError('invoice', id);
    return inv;
  }

  async get(em: EntityManager, organizationId: string, id: string): Promise<InvoiceDetail> {
    const invoice = await this.find(em, organizationId, id);
    const [lines, rollups, creditNotes, payments] = await Promise.all([
      em.find(InvoiceLine, { invoiceId: invoice.id }, { orderBy: { position: 'asc' } }),
      em.find(InvoiceRollup, { invoiceId: invoice.id }, { orderBy: { productKey: 'asc', priceKey: 'asc' } }),
      em.find(CreditNote, { invoiceId: invoice.id }, { orderBy: { createdAt: 'asc' } }),
      em.find(Payment, { invoiceId: invoice.id }, { orderBy: { receivedAt: 'asc' } }),
    ]);
    return { invoice, lines, rollups, creditNotes, payments, balance: balanceOf(invoice, creditNotes, payments) };
  }

  /** Newest first; fetch `limit + 1` rows for `toPage`. */
  async list(em: EntityManager, organizationId: string, q: InvoiceListQuery): Promise<Invoice[]> {
    const where: Record<string, unknown> = { organizationId, ...afterCursor(decodeCursor(q.cursor)) };
    if (q.status) where.status = q.status;
    if (q.kind) where.kind = q.kind;
    if (q.subscription) where.subscriptionId = UUID_RE.test(q.subscription) ? q.subscription : '00000000-0000-0000-0000-000000000000';
    if (q.customer) where.customerId = (await this.customers.get(em, organizationId, q.customer)).id;
    if (q.period) {
      const [y, m] = q.period.split('-').map(Number);
      where.periodStart = { $gte: new Date(Date.UTC(y, m - 1, 1)), $lt: new Date(Date.UTC(y, m, 1)) };
    }
    return em.find(Invoice, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 });
  }

  async balance(em: EntityManager, invoice: Invoice): Promise<InvoiceBalance> {
    const [notes, payments] = await Promise.all([em.find(CreditNote, { invoiceId: invoice.id }), em.find(Payment, { invoiceId: invoice.id })]);
    return balanceOf(invoice, notes, payments);
  }

  /**
   * Finalizes a draft now. A period draft whose rollups changed is re-rated first (late events),
   * and an earlier period draft of the subscription must be finalized before it (422
   * `earlier_invoice_draft`). Finalizing a finalized (or paid, or void) invoice returns it as it is:
   * one transition, one audit entry, one `invoice.finalized`. The transition is `finalizeSet`'s with
   * one invoice: the month-end batch path and this one are the same code.
   */
  async finalize(em: EntityManager, organizationId: string, id: string, now = new Date()): Promise<FinalizeResult> {
    const inv = await this.find(em, organizationId, id);
    if (inv.status !== 'draft') return { invoice: inv, transitioned: false };
    // Only a pair with events since its last recompute (marked by ingest in the events' statement)
    // is recomputed: otherwise the stored rollups already cover every committed event.
    if (inv.kind === 'period') await this.rollups.ensureFresh(em, inv.subscriptionId, inv.periodStart);
    return em.transactional(async (tx) => {
      const res = await this.finalizeSet(tx, [{ id: inv.id, subscriptionId: inv.subscriptionId }], now);
      if (res.refused.length) throw res.refused[0].error;
      if (res.finalized.length) return { invoice: res.finalized[0], transitioned: true };
      return { invoice: res.unchanged[0], transitioned: false };
    });
  }

  /**
   * The draft → finalized transition of a set of invoices of one organization, at most one per
   * subscription, in the caller's transaction, with a constant number of statements whatever the
   * size of the set: the subscriptions' locks (in id order), one locked read, one check (earlier
   * drafts, staleness), the lines in one read, `count` numbers from one update of the counter row,
   * one UPDATE of the invoices, the posting hooks' set-based writes, one INSERT of audit entries and
   * one of outbox messages. Stale period drafts are re-rated first, together (`rerateMany`). A
   * draft with an earlier period draft still open is left out and returned in `refused` (the single
   * path throws that error). Numbers follow the order of `items`.
   */
  private async finalizeSet(tx: EntityManager, items: readonly { id: string; subscriptionId: string }[], now: Date, opts: { lean?: boolean } = {}): Promise<FinalizeSetResult> {
    const result: FinalizeSetResult = { finalized: [], unchanged: [], refused: [] };
    if (!items.length) return result;
    const ids = items.map((i) => i.id);
    await lockSubscriptions(tx, items.map((i) => i.subscriptionId));
    const locked = new Map(
      // `lean` (a context of its own, nothing loaded before): without the stored rating input and
      // allowance, JSON documents the unit of work would compare at every flush; a stale draft loads
      // them before it is re-rated.
      (
        await tx.find(Invoice, { id: { $in: ids } }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true, ...(opts.lean ? { exclude: ['ratingInput', 'allowance'] as const } : {}) })
      ).map((i) => [i.id, i]),
    );
    const drafts: Invoice[] = [];
    for (const id of ids) {
      const inv = locked.get(id);
      if (!inv) throw new NotFoundError('invoice', id);
      if (inv.status === 'draft') drafts.push(inv);
      else result.unchanged.push(inv);
    }
    const periodDrafts = drafts.filter((i) => i.kind === 'period');
    const checks = new Map(
      periodDrafts.length ? (await tx.execute<DraftCheckRow[]>(DRAFT_CHECKS_SQL, [uuidArray(periodDrafts.map((i) => i.id))])).map((r) => [r.id, r]) : [],
    );
    const ready: Invoice[] = [];
    const rerated = new Set<string>();
    for (const inv of drafts) {
      const check = checks.get(inv.id);
      if (check?.earlier_id) {
        result.refused.push({
          id: inv.id,
          error: new UnprocessableError(
            'earlier_invoice_draft',
            `the period invoice ${check.earlier_id} of an earlier period of this subscription is still a draft; finalize it first`,
            'invoice_id',
            { invoice_id: check.earlier_id },
          ),
        });
        continue;
      }
      if (check?.stale) rerated.add(inv.id);
      ready.push(inv);
    }
    // Stale drafts are re-rated together (fully loaded: a lean chunk read left their rating input out).
    if (rerated.size) await this.rating.rerateMany(tx, await tx.find(Invoice, { id: { $in: [...rerated] } }, { refresh: true, orderBy: { subscriptionId: 'asc' } }), now);
    if (!ready.length) return result;

    const lines = new Map<string, FinalizedLine[]>(ready.map((i) => [i.id, []]));
    for (const l of await finalizedLines(tx, ready.map((i) => i.id))) lines.get(l.invoiceId)?.push(l);
    // The numbers are taken after every read: the counter row is locked until commit, so every other
    // finalization of the organization waits on it; only the writes follow.
    const dueAt = new Date(now.getTime() + PAYMENT_TERMS_DAYS * 86_400_000);
    for (const orgId of new Set(ready.map((i) => i.organizationId))) {
      const mine = ready.filter((i) => i.organizationId === orgId);
      const numbers = await reserveDocumentNumbers(tx, orgId, 'invoice', mine.length);
      mine.forEach((inv, k) => {
        inv.status = 'finalized';
        inv.finalizedAt = now;
        inv.dueAt = dueAt;
        inv.number = numbers[k];
      });
    }
    await tx.flush();
    await this.events.invoicesFinalized(
      tx,
      ready.map((invoice) => ({ invoice, lines: lines.get(invoice.id)! })),
    );
    await this.audit.insertMany(
      tx,
      ready.map((inv) => finalizedAudit(inv, rerated.has(inv.id))),
    );
    await this.outbox.emitMany(
      tx,
      ready.map((inv) => finalizedEvent(inv, now)),
    );
    result.finalized = ready;
    return result;
  }

  /** `finalize`, answered with the invoice as `get` reads it (what the HTTP route presents). */
  async finalizeAndGet(em: EntityManager, organizationId: string, id: string, now = new Date()): Promise<{ detail: InvoiceDetail; transitioned: boolean }> {
    const res = await this.finalize(em, organizationId, id, now);
    return { detail: await this.get(em, organizationId, res.invoice.id), transitioned: res.transitioned };
  }

  /**
   * Finalizes the drafts whose draft window has passed, oldest period first per subscription, a
   * batch of `batch` at a time (`finalizeInOrder`), batch after batch until none is due, for at most
   * `budgetMs` (a month-end's thousands of drafts go in one run instead of `batch` per run; the
   * budget keeps a run inside its schedule's interval). A failure is logged and retried on the next
   * run; the subscription it belongs to is left out of this run's later batches (its later drafts
   * would only be refused as `earlier_invoice_draft`).
   */
  async finalizeDue(em: EntityManager, now = new Date(), opts: { batch?: number; budgetMs?: number } = {}): Promise<FinalizeDueResult> {
    const batch = opts.batch ?? FINALIZE_DUE_BATCH;
    const deadline = Date.now() + (opts.budgetMs ?? FINALIZE_DUE_BUDGET_MS);
    const out: FinalizeDueResult = { finalized: 0, failed: 0, batches: 0, more: false };
    const stopped = new Set<string>();
    for (;;) {
      const due = await em.execute<DraftRow[]>(
        `select ${DRAFT_COLUMNS} from invoices where status = 'draft' and finalize_after <= ? and subscription_id <> all(?::uuid[])
         order by organization_id, subscription_id, period_start, ${KIND_ORDER}, created_at limit ?`,
        [now.toISOString(), uuidArray([...stopped]), batch],
      );
      const res = await this.finalizeInOrder(em, due, 2, now);
      const subscriptionOf = new Map(due.map((r) => [r.id, r.subscription_id]));
      for (const f of res.failed) {
        stopped.add(subscriptionOf.get(f.invoice_id)!);
        this.logger.warn({ invoice: f.invoice_id, code: f.code, message: f.message }, 'a due draft could not be finalized; retried on the next run');
      }
      out.batches++;
      out.finalized += res.finalized;
      out.failed += res.failed.length;
      out.more = due.length === batch;
      if (!out.more || Date.now() >= deadline) return out;
    }
  }

  /**
   * Finalizes now an organization's drafts (every kind) whose period ends at or before `through`,
   * at most `limit` of them: what finance runs at month-end instead of one request per draft. Same
   * transition as `finalize`, in chunks of up to FINALIZE_CHUNK drafts per transaction; a chunk
   * that cannot commit is finalized again one invoice per transaction, so one failure never undoes
   * or stops the others; a subscription's drafts go oldest period first and stop at its first
   * failure (the later ones would only be refused as `earlier_invoice_draft`).
   */
  async finalizeThrough(
    em: EntityManager,
    organizationId: string,
    through: Date,
    opts: { limit?: number; concurrency?: number } = {},
    now = new Date(),
  ): Promise<FinalizeManyResult> {
    const drafts = `from invoices where organization_id = ? and status = 'draft' and period_end <= ?`;
    const rows = await em.execute<DraftRow[]>(
      `select ${DRAFT_COLUMNS} ${drafts}
       order by subscription_id, period_start, ${KIND_ORDER}, created_at limit ?`,
      [organizationId, through.toISOString(), opts.limit ?? 500],
    );
    const res = await this.finalizeInOrder(em, rows, opts.concurrency ?? 4, now);
    const [{ n }] = await em.execute<{ n: number }[]>(`select count(*)::int as n ${drafts}`, [organizationId, through.toISOString()]);
    return { ...res, remaining: n };
  }

  /**
   * Finalizes rows (ordered per subscription) in waves: each wave takes the next draft of every
   * subscription still going, in chunks of FINALIZE_CHUNK drafts finalized together (`finalizeSet`),
   * so a subscription's drafts go oldest first and a chunk holds one per subscription. Numbers
   * within a chunk follow the rows' order (subscription id), chunk after chunk, wave after wave.
   * Organizations go side by side, `concurrency` at a time; one organization's chunks go one after
   * the other (they would queue on its counter row anyway).
   */
  private async finalizeInOrder(em: EntityManager, rows: DraftRow[], concurrency: number, now: Date): Promise<Omit<FinalizeManyResult, 'remaining'>> {
    const orgs = new Map<string, Map<string, DraftRow[]>>();
    for (const r of rows) {
      let subs = orgs.get(r.organization_id);
      if (!subs) orgs.set(r.organization_id, (subs = new Map()));
      const group = subs.get(r.subscription_id);
      if (group) group.push(r);
      else subs.set(r.subscription_id, [r]);
    }
    const queue = [...orgs.values()];
    const out: Omit<FinalizeManyResult, 'remaining'> = { finalized: 0, unchanged: 0, failed: [] };
    const lane = async () => {
      for (let subs = queue.shift(); subs; subs = queue.shift()) {
        const pending = [...subs.values()].map((group) => ({ group, next: 0 }));
        for (let live = pending; live.length; live = pending.filter((p) => p.next < p.group.length)) {
          for (let i = 0; i < live.length; i += FINALIZE_CHUNK) {
            const part = live.slice(i, i + FINALIZE_CHUNK);
            const outcomes = await this.finalizeChunk(
              em,
              part.map((p) => p.group[p.next]),
              now,
            );
            for (const p of part) {
              const o = outcomes.get(p.group[p.next].id)!;
              if (o === 'finalized') out.finalized++;
              else if (o === 'unchanged') out.unchanged++;
              else out.failed.push(o);
              // A failure stops the subscription: its later drafts wait for the next call.
              p.next = typeof o === 'string' ? p.next + 1 : p.group.length;
            }
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, queue.length)) }, lane));
    return out;
  }

  /**
   * One chunk (drafts of one organization, one per subscription): finalized together in one
   * transaction; what that transaction left out (an `earlier_invoice_draft`), or the whole chunk if
   * it could not commit, goes through `finalize` one invoice at a time, whose outcome is reported.
   */
  private async finalizeChunk(em: EntityManager, rows: DraftRow[], now: Date): Promise<Map<string, ChunkOutcome>> {
    const outcomes = new Map<string, ChunkOutcome>();
    let single = rows;
    try {
      const fork = em.fork();
      // As `finalize` does before its transaction (`ensureFresh`, here for the chunk in one read):
      // rollups with events since their last recompute are recomputed.
      const pairs = rows.filter((r) => r.kind === 'period').map((r) => ({ subscription_id: r.subscription_id, period_start: r.period_start }));
      const dirty = await stalePairsOf(fork, pairs);
      if (dirty.length) await this.rollups.recomputeMany(fork, dirty);
      // A context of its own, with nothing loaded before: the set can be read lean.
      const res = await em.fork().transactional((tx) =>
        this.finalizeSet(
          tx,
          rows.map((r) => ({ id: r.id, subscriptionId: r.subscription_id })),
          now,
          { lean: true },
        ),
      );
      for (const inv of res.finalized) outcomes.set(inv.id, 'finalized');
      for (const inv of res.unchanged) outcomes.set(inv.id, 'unchanged');
      single = rows.filter((r) => !outcomes.has(r.id));
    } catch (err) {
      this.logger.warn({ err, invoices: rows.length }, 'a finalization chunk did not commit; finalizing its invoices one by one');
    }
    for (const row of single) {
      try {
        const res = await this.finalize(em.fork(), row.organization_id, row.id, now);
        outcomes.set(row.id, res.transitioned ? 'finalized' : 'unchanged');
      } catch (err) {
        if (!(err instanceof DomainError)) this.logger.error({ err, invoice: row.id }, 'finalization failed');
        outcomes.set(row.id, {
          invoice_id: row.id,
          code: err instanceof DomainError ? err.code : 'finalization_failed',
          message: err instanceof DomainError ? err.message : 'the invoice could not be finalized; it stays a draft',
        });
      }
    }
    return outcomes;
  }
}

/**
 * The lines of invoices being finalized, as the posting hooks read them (`FinalizedLine`), in
 * position order: plain rows of the columns they need. Read-only here, so not entities: hydrating
 * each line's computation (its JSON steps) and registering it was most of a finalization's CPU.
 */
async function finalizedLines(tx: EntityManager, invoiceIds: readonly string[]): Promise<FinalizedLine[]> {
  const rows = await tx.execute<FinalizedLineRow[]>(FINALIZED_LINES_SQL, [uuidArray(invoiceIds)]);
  return rows.map((r) => ({
    id: r.id,
    invoiceId: r.invoice_id,
    position: r.position,
    lineKey: r.line_key,
    type: r.type,
    productKey: r.product_key,
    priceKey: r.price_key,
    periodStart: new Date(r.period_start),
    periodEnd: new Date(r.period_end),
    quantity: r.quantity,
    amount: r.amount,
    currency: r.currency,
    description: r.description,
    meta: r.meta,
    sourceType: r.source_type,
    sourceId: r.source_id,
  }));
}

interface FinalizedLineRow {
  id: string;
  invoice_id: string;
  position: number;
  line_key: string;
  type: FinalizedLine['type'];
  product_key: string | null;
  price_key: string | null;
  /** Instants come back from `em.execute` as PostgreSQL's text (MikroORM's type parsers). */
  period_start: string;
  period_end: string;
  quantity: string;
  amount: string;
  currency: string;
  description: string;
  meta: FinalizedLine['meta'];
  source_type: FinalizedLine['sourceType'];
  source_id: string | null;
}

// Numerics as text: decimal strings exactly as stored, as the entity maps them.
const FINALIZED_LINES_SQL = `select id, invoice_id, position, line_key, type, product_key, price_key, period_start, period_end,
    quantity::text as quantity, amount::text as amount, currency, description, meta, source_type, source_id
  from invoice_lines where invoice_id = any(?::uuid[]) order by invoice_id, position`;

/** Drafts `finalizeDue` reads and finalizes per batch. */
export const FINALIZE_DUE_BATCH = 500;
/** How long one `finalizeDue` run goes on taking batches: three quarters of the schedule's minute. */
export const FINALIZE_DUE_BUDGET_MS = 45_000;

export interface FinalizeDueResult {
  finalized: number;
  failed: number;
  /** Batches read by this run. */
  batches: number;
  /** True when the run stopped at its time budget with a full last batch: more drafts may be due. */
  more: boolean;
}

/** Drafts finalized together per transaction by the month-end paths. */
export const FINALIZE_CHUNK = 50;

interface DraftRow {
  id: string;
  organization_id: string;
  subscription_id: string;
  kind: InvoiceKind;
  /** PostgreSQL's text of the instant (`em.execute`): passed on to the rollups' pair keys, which take it. */
  period_start: string;
}

const DRAFT_COLUMNS = `id, organization_id, subscription_id, kind, period_start`;

type ChunkOutcome = 'finalized' | 'unchanged' | FinalizeManyResult['failed'][number];

interface FinalizeSetResult {
  /** Finalized by this call, in number order. */
  finalized: Invoice[];
  /** Not drafts any more (finalized meanwhile, paid, void). */
  unchanged: Invoice[];
  /** Left as drafts: an earlier period draft of the subscription is still open. */
  refused: { id: string; error: DomainError }[];
}

/** A `{…}` literal for a `?::uuid[]` parameter. */
const uuidArray = (ids: readonly string[]) => `{${ids.join(',')}}`;


interface DraftCheckRow {
  id: string;
  /** The oldest earlier period draft of the subscription, if any. */
  earlier_id: string | null;
  stale: boolean;
}

/** Per period draft of `?::uuid[]`: its oldest earlier period draft, and whether it is stale. */
export const DRAFT_CHECKS_SQL = `select i.id,
    (select e.id from invoices e where e.subscription_id = i.subscription_id and e.kind = 'period' and e.status = 'draft'
        and e.period_start < i.period_start order by e.period_start, e.id limit 1) as earlier_id,
    ${PERIOD_INVOICE_STALE} as stale
  from invoices i where i.id = any(?::uuid[]) and i.kind = 'period'`;

/** The audit entry of a finalization. */
function finalizedAudit(inv: Invoice, rerated: boolean): AuditRecord {
  return {
    organizationId: inv.organizationId,
    action: 'invoice.finalized',
    resourceType: 'invoice',
    resourceId: inv.id,
    data: { number: inv.number, kind: inv.kind, total: inv.total, currency: inv.currency, content_hash: inv.contentHash, rerated },
  };
}

/** The `invoice.finalized` outbox message of a finalization. */
function finalizedEvent(inv: Invoice, now: Date): OutboxEvent {
  return {
    organizationId: inv.organizationId,
    type: 'invoice.finalized',
    dedupeKey: `invoice.finalized:${inv.id}`,
    payload: {
      invoice_id: inv.id,
      number: inv.number,
      kind: inv.kind,
      customer_id: inv.customerId,
      subscription_id: inv.subscriptionId,
      period: { start: inv.periodStart.toISOString(), end: inv.periodEnd.toISOString() },
      subtotal: { amount: inv.subtotal, currency: inv.currency },
      tax: { amount: inv.taxAmount, currency: inv.currency },
      total: { amount: inv.total, currency: inv.currency },
      finalized_at: now.toISOString(),
      due_at: inv.dueAt!.toISOString(),
    },
  };
}

/** Opening invoices before period invoices before anything else of the same period. */
const KIND_ORDER = `case kind when 'opening' then 0 when 'period' then 1 else 2 end`;

export interface FinalizeManyResult {
  finalized: number;
  /** Drafts finalized meanwhile by someone else (one transition each, never two). */
  unchanged: number;
  /** Drafts left as drafts, with why; a subscription's later drafts wait for the next call. */
  failed: { invoice_id: string; code: string; message: string }[];
  /** Drafts still matching after this call (a next call, or the failures to look at). */
  remaining: number;
}

/** Credited and paid amounts and what is left to pay (total − credit notes − payments). */
export function balanceOf(invoice: Invoice, notes: CreditNote[], payments: Payment[]): InvoiceBalance {
  const cur = invoice.currency;
  const credited = Money.sum(notes.map((n) => Money.of(n.total, cur)), cur).round();
  const paid = Money.sum(payments.map((p) => Money.of(p.amount, cur)), cur).round();
  const due = Money.of(dec(invoice.total), cur).round().minus(credited).minus(paid);
  return { credited: credited.format(), paid: paid.format(), due: due.format() };
}
