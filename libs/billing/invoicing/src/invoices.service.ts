import { Injectable, Logger } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec, Money } from '@closebook/money';
import { afterCursor, AuditService, decodeCursor, DomainError, NotFoundError, OutboxService, UnprocessableError } from '@closebook/platform';
import { RollupsService } from '@closebook/metering';
import { CustomersService } from '@closebook/subscriptions';
import { Invoice, type InvoiceKind, type InvoiceStatus } from './entities/invoice.entity';
import { InvoiceLine } from './entities/invoice-line.entity';
import { InvoiceRollup } from './entities/invoice-rollup.entity';
import { CreditNote } from './entities/credit-note.entity';
import { Payment } from './entities/payment.entity';
import { InvoicingEvents } from './invoicing-events';
import { nextDocumentNumber } from './document-numbers';
import { PeriodRatingService } from './rating/period-rating.service';
import { SUBSCRIPTION_LOCK_SQL } from './rating/invoice-content';

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
   * one transition, one audit entry, one `invoice.finalized`.
   */
  async finalize(em: EntityManager, organizationId: string, id: string, now = new Date()): Promise<FinalizeResult> {
    const inv = await this.find(em, organizationId, id);
    if (inv.status !== 'draft') return { invoice: inv, transitioned: false };
    // Only a pair with events since its last recompute (marked by ingest in the events' statement)
    // is recomputed: otherwise the stored rollups already cover every committed event.
    if (inv.kind === 'period') await this.rollups.ensureFresh(em, inv.subscriptionId, inv.periodStart);
    return em.transactional(async (tx) => {
      await tx.execute(SUBSCRIPTION_LOCK_SQL, [inv.subscriptionId]);
      const locked = await tx.findOneOrFail(Invoice, { id: inv.id }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
      if (locked.status !== 'draft') return { invoice: locked, transitioned: false };
      let rerated = false;
      if (locked.kind === 'period') {
        const earlier = await tx.findOne(Invoice, { subscriptionId: locked.subscriptionId, kind: 'period', status: 'draft', periodStart: { $lt: locked.periodStart } });
        if (earlier) {
          throw new UnprocessableError(
            'earlier_invoice_draft',
            `the period invoice ${earlier.id} of an earlier period of this subscription is still a draft; finalize it first`,
            'invoice_id',
            { invoice_id: earlier.id },
          );
        }
        if (await this.rating.isStale(tx, locked)) {
          await this.rating.rerate(tx, locked, now);
          rerated = true;
        }
      }
      // The document number is taken last but one: its counter row is locked until commit, so every
      // other finalization of the organization waits on it; only the posting and two inserts follow.
      const lines = await tx.find(InvoiceLine, { invoiceId: locked.id }, { orderBy: { position: 'asc' } });
      locked.status = 'finalized';
      locked.finalizedAt = now;
      locked.dueAt = new Date(now.getTime() + PAYMENT_TERMS_DAYS * 86_400_000);
      locked.number = await nextDocumentNumber(tx, locked.organizationId, 'invoice');
      await tx.flush();
      await this.events.invoiceFinalized(tx, locked, lines);
      this.audit.record(tx, {
        organizationId: locked.organizationId,
        action: 'invoice.finalized',
        resourceType: 'invoice',
        resourceId: locked.id,
        data: { number: locked.number, kind: locked.kind, total: locked.total, currency: locked.currency, content_hash: locked.contentHash, rerated },
      });
      await this.outbox.emit(tx, {
        organizationId: locked.organizationId,
        type: 'invoice.finalized',
        dedupeKey: `invoice.finalized:${locked.id}`,
        payload: {
          invoice_id: locked.id,
          number: locked.number,
          kind: locked.kind,
          customer_id: locked.customerId,
          subscription_id: locked.subscriptionId,
          period: { start: locked.periodStart.toISOString(), end: locked.periodEnd.toISOString() },
          subtotal: { amount: locked.subtotal, currency: locked.currency },
          tax: { amount: locked.taxAmount, currency: locked.currency },
          total: { amount: locked.total, currency: locked.currency },
          finalized_at: now.toISOString(),
          due_at: locked.dueAt.toISOString(),
        },
      });
      await tx.flush();
      return { invoice: locked, transitioned: true };
    });
  }

  /** `finalize`, answered with the invoice as `get` reads it (what the HTTP route presents). */
  async finalizeAndGet(em: EntityManager, organizationId: string, id: string, now = new Date()): Promise<{ detail: InvoiceDetail; transitioned: boolean }> {
    const res = await this.finalize(em, organizationId, id, now);
    return { detail: await this.get(em, organizationId, res.invoice.id), transitioned: res.transitioned };
  }

  /**
   * Finalizes the drafts whose draft window has passed, oldest period first per subscription.
   * One transaction per invoice; a failure is logged and retried on the next run.
   */
  async finalizeDue(em: EntityManager, now = new Date(), batch = 500): Promise<{ finalized: number; failed: number }> {
    const due = await em.execute<DraftRow[]>(
      `select id, organization_id, subscription_id from invoices where status = 'draft' and finalize_after <= ?
       order by subscription_id, period_start, ${KIND_ORDER}, created_at limit ?`,
      [now.toISOString(), batch],
    );
    const res = await this.finalizeInOrder(em, due, 2, now);
    for (const f of res.failed) this.logger.warn({ invoice: f.invoice_id, code: f.code, message: f.message }, 'a due draft could not be finalized; retried on the next run');
    return { finalized: res.finalized, failed: res.failed.length };
  }

  /**
   * Finalizes now an organization's drafts (every kind) whose period ends at or before `through`,
   * at most `limit` of them: what finance runs at month-end instead of one request per draft. Same
   * transition as `finalize`, one transaction per invoice, so one failure never undoes or stops the
   * others; a subscription's drafts go oldest period first and stop at its first failure (the later
   * ones would only be refused as `earlier_invoice_draft`), subscriptions side by side.
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
      `select id, organization_id, subscription_id ${drafts}
       order by subscription_id, period_start, ${KIND_ORDER}, created_at limit ?`,
      [organizationId, through.toISOString(), opts.limit ?? 500],
    );
    const res = await this.finalizeInOrder(em, rows, opts.concurrency ?? 4, now);
    const [{ n }] = await em.execute<{ n: number }[]>(`select count(*)::int as n ${drafts}`, [organizationId, through.toISOString()]);
    return { ...res, remaining: n };
  }

  /** Finalizes rows (ordered per subscription) with `concurrency` subscriptions at a time. */
  private async finalizeInOrder(em: EntityManager, rows: DraftRow[], concurrency: number, now: Date): Promise<Omit<FinalizeManyResult, 'remaining'>> {
    const groups = new Map<string, DraftRow[]>();
    for (const r of rows) {
      const group = groups.get(r.subscription_id);
      if (group) group.push(r);
      else groups.set(r.subscription_id, [r]);
    }
    const queue = [...groups.values()];
    const out: Omit<FinalizeManyResult, 'remaining'> = { finalized: 0, unchanged: 0, failed: [] };
    const lane = async () => {
      for (let group = queue.shift(); group; group = queue.shift()) {
        for (const row of group) {
          try {
            const res = await this.finalize(em.fork(), row.organization_id, row.id, now);
            if (res.transitioned) out.finalized++;
            else out.unchanged++;
          } catch (err) {
            if (!(err instanceof DomainError)) this.logger.error({ err, invoice: row.id }, 'finalization failed');
            out.failed.push({
              invoice_id: row.id,
              code: err instanceof DomainError ? err.code : 'finalization_failed',
              message: err instanceof DomainError ? err.message : 'the invoice could not be finalized; it stays a draft',
            });
            break;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
    return out;
  }
}

interface DraftRow {
  id: string;
  organization_id: string;
  subscription_id: string;
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
