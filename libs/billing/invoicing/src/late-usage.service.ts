import { Injectable, Logger } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { dec, formatDecimal, Money, MoneyError } from '@closebook/money';
import { afterCursor, AuditService, decodeCursor, isUuid, NotFoundError, UnprocessableError } from '@closebook/platform';
import { ratePeriodInvoice, type AdjustmentInput, type PeriodInvoice } from '@closebook/rating';
import { Invoice } from './entities/invoice.entity';
import { PendingItem } from './entities/pending-item.entity';
import { LateUsage, type LateUsageStatus } from './entities/late-usage.entity';
import { PeriodRatingService, usageOf } from './rating/period-rating.service';
import type { RollupSnapshot } from './rating/invoice-writer';

/** A rollup whose count, aggregate or digest differs from what its period invoice was rated from. */
interface ChangedRollup {
  invoice_id: string;
  rollup_id: string;
  product_key: string;
  price_key: string;
  event_count: string;
  aggregate: string;
  digest: string;
}

const CHANGED_ROLLUPS_SQL = (statuses: string) => `
select i.id as invoice_id, u.id as rollup_id, u.product_key, u.price_key,
       u.event_count::text as event_count, u.aggregate::text as aggregate, u.digest::text as digest
from invoices i
join usage_rollups u on u.subscription_id = i.subscription_id and u.period_start = i.period_start
where i.kind = 'period' and i.status in (${statuses}) and u.computed_at > i.rated_at
  and i.period_end > now() - interval '400 days'
  and (?::uuid is null or i.organization_id = ?::uuid)
  and not exists (select 1 from invoice_rollups r where r.invoice_id = i.id and r.rollup_id = u.id
                  and r.event_count = u.event_count and r.digest = u.digest and r.aggregate = u.aggregate)
  and (u.event_count > 0 or exists (select 1 from invoice_rollups r where r.invoice_id = i.id and r.rollup_id = u.id))
  and not exists (select 1 from late_usage l where l.invoice_id = i.id and l.rollup_id = u.id
                  and l.event_count = u.event_count and l.digest = u.digest)
order by i.id, u.product_key, u.price_key
limit ?`;

const USAGE_TYPES = new Set(['usage_included', 'usage_overage']);

/**
 * Late events (SPEC §3): a draft whose rollups changed is re-rated; a finalized invoice never
 * changes — each changed rollup of its period is recorded as late_usage with the amount it would
 * have billed, computed by re-rating the period with the invoice's own stored rating input (same
 * pure function, same segments, grants and prices) at the new and at the previous quantity.
 */
@Injectable()
export class LateUsageService {
  private readonly logger = new Logger('LateUsageService');

  constructor(private readonly rating: PeriodRatingService, private readonly audit: AuditService) {}

  /** One pass: re-rate stale drafts, then record late usage of finalized invoices. */
  async watch(em: EntityManager, now = new Date(), organizationId?: string): Promise<{ rerated: number; late_usage: number }> {
    const rerated = await this.rerateStaleDrafts(em, now, organizationId);
    const late = await this.recordLateUsage(em, organizationId);
    return { rerated, late_usage: late };
  }

  async rerateStaleDrafts(em: EntityManager, now = new Date(), organizationId?: string): Promise<number> {
    const rows = await em.execute<ChangedRollup[]>(CHANGED_ROLLUPS_SQL(`'draft'`), [organizationId ?? null, organizationId ?? null, 500]);
    let n = 0;
    for (const id of [...new Set(rows.map((r) => r.invoice_id))]) {
      try {
        const fork = em.fork();
        const inv = await fork.findOneOrFail(Invoice, { id });
        if (await this.rating.refresh(fork, inv, now, { recompute: false })) n++;
      } catch (err) {
        this.logger.warn({ err, invoice: id }, 'a draft with late events could not be re-rated');
      }
    }
    return n;
  }

  async recordLateUsage(em: EntityManager, organizationId?: string): Promise<number> {
    const rows = await em.execute<ChangedRollup[]>(CHANGED_ROLLUPS_SQL(`'finalized', 'paid'`), [organizationId ?? null, organizationId ?? null, 500]);
    let n = 0;
    const invoices = new Map<string, { invoice: Invoice; snapshot: RollupSnapshot[] }>();
    for (const r of rows) {
      try {
        const fork = em.fork();
        if (!invoices.has(r.invoice_id)) {
          const invoice = await fork.findOneOrFail(Invoice, { id: r.invoice_id });
          invoices.set(r.invoice_id, { invoice, snapshot: await this.rating.snapshotOf(fork, invoice.id) });
        }
        const { invoice, snapshot } = invoices.get(r.invoice_id)!;
        if (await this.record(fork, invoice, snapshot, r)) n++;
      } catch (err) {
        this.logger.warn({ err, invoice: r.invoice_id, rollup: r.rollup_id }, 'late usage could not be recorded');
      }
    }
    return n;
  }

  private async record(em: EntityManager, invoice: Invoice, snapshot: RollupSnapshot[], r: ChangedRollup): Promise<boolean> {
    const billed = snapshot.find((s) => s.id === r.rollup_id)?.aggregate ?? '0';
    const [last] = await em.find(LateUsage, { invoiceId: invoice.id, rollupId: r.rollup_id }, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: 1 });
    const previous = last?.quantity ?? billed;
    const valued = this.value(invoice, snapshot, r, previous, r.aggregate);
    const rows = await em.execute<{ id: string }[]>(
      `insert into late_usage (id, created_at, organization_id, subscription_id, customer_id, invoice_id, period_start, period_end,
                               product_key, price_key, rollup_id, billed_quantity, previous_quantity, quantity, quantity_delta,
                               amount, currency, event_count, digest, steps, status)
       values (?, now(), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, 'open')
       on conflict (invoice_id, product_key, price_key, event_count, digest) do nothing
       returning id`,
      [
        randomUUID(),
        invoice.organizationId,
        invoice.subscriptionId,
        invoice.customerId,
        invoice.id,
        invoice.periodStart.toISOString(),
        invoice.periodEnd.toISOString(),
        r.product_key,
        r.price_key,
        r.rollup_id,
        formatDecimal(dec(billed)),
        formatDecimal(dec(previous)),
        formatDecimal(dec(r.aggregate)),
        formatDecimal(dec(r.aggregate).minus(dec(previous))),
        valued.amount,
        invoice.currency,
        r.event_count,
        r.digest,
        JSON.stringify(valued.steps),
      ],
    );
    return rows.length === 1;
  }

  /** The usage lines of one dimension rated at `previous` and at `current` (the rest as billed), and their difference. */
  private value(invoice: Invoice, snapshot: RollupSnapshot[], r: ChangedRollup, previous: string, current: string): { amount: string; steps: LateUsage['steps'] } {
    const input = invoice.ratingInput;
    const empty = { current: [], previous: [] };
    if (!input) return { amount: Money.zero(invoice.currency).format(), steps: { ...empty, error: { code: 'no_rating_input', message: 'the invoice has no stored rating input' } } };
    const usageAt = (q: string) => {
      const rows = snapshot.some((s) => s.id === r.rollup_id) ? snapshot.map((s) => (s.id === r.rollup_id ? { ...s, aggregate: q } : s)) : [...snapshot, { ...r, id: r.rollup_id, aggregate: q }];
      return usageOf(rows);
    };
    const dim = (inv: PeriodInvoice) =>
      inv.lines.filter((l) => USAGE_TYPES.has(l.type) && l.product_key === r.product_key && (l.price_key ?? '') === r.price_key).map((l) => ({ line_key: l.line_key, amount: l.amount, steps: l.steps }));
    try {
      const before = dim(ratePeriodInvoice({ ...input, usage: usageAt(previous) }));
      const after = dim(ratePeriodInvoice({ ...input, usage: usageAt(current) }));
      const sum = (ls: { amount: string }[]) => Money.sum(ls.map((l) => Money.parse(l.amount, invoice.currency)), invoice.currency);
      return { amount: sum(after).minus(sum(before)).format(), steps: { current: after, previous: before } };
    } catch (err) {
      if (!(err instanceof MoneyError)) throw err;
      return { amount: Money.zero(invoice.currency).format(), steps: { ...empty, error: { code: err.code, message: err.message } } };
    }
  }

  /**
   * Bills late usage on the next period invoice (the close process's `corrected` resolution): an
   * `adjustment` pending item carrying the original service period, the amount it would have
   * billed and the steps that computed it; the row becomes `billed`. Idempotent: billing it again
   * returns the same pending item (`billed: false`). Waived late usage is 422 `late_usage_waived`.
   */
  async bill(em: EntityManager, organizationId: string, lateUsageId: string, now = new Date()): Promise<{ pendingItem: PendingItem; lateUsage: LateUsage; billed: boolean }> {
    return em.transactional(async (tx) => {
      const late = await this.lock(tx, organizationId, lateUsageId);
      const existing = await tx.findOne(PendingItem, { organizationId, sourceType: 'late_usage', sourceId: late.id });
      if (existing) {
        if (late.status !== 'billed') late.status = 'billed';
        await tx.flush();
        return { pendingItem: existing, lateUsage: late, billed: false };
      }
      if (late.status === 'waived') throw new UnprocessableError('late_usage_waived', `late usage ${late.id} was waived`, 'late_usage_id');
      const delta = dec(late.quantityDelta);
      const description = `Late usage of ${late.productKey}${late.priceKey ? ` (${late.priceKey})` : ''}: ${formatDecimal(delta)} after invoicing`;
      const payload: AdjustmentInput = {
        adjustment_id: late.id,
        description,
        amount: late.amount,
        period_start: late.periodStart.toISOString(),
        period_end: late.periodEnd.toISOString(),
        product_key: late.productKey,
        ...(delta.gte(0) ? { quantity: formatDecimal(delta) } : {}),
        steps: [...late.steps.current, ...late.steps.previous].flatMap((l) => l.steps),
      };
      const pendingItem = tx.create(PendingItem, {
        organizationId,
        subscriptionId: late.subscriptionId,
        kind: 'adjustment',
        payload,
        billableFrom: now,
        sourceType: 'late_usage',
        sourceId: late.id,
        description,
      });
      late.status = 'billed';
      this.audit.record(tx, {
        organizationId,
        action: 'late_usage.billed',
        resourceType: 'late_usage',
        resourceId: late.id,
        data: { pending_item_id: pendingItem.id, amount: late.amount, currency: late.currency, period_start: payload.period_start, period_end: payload.period_end },
      });
      await tx.flush();
      return { pendingItem, lateUsage: late, billed: true };
    });
  }

  /** Waives late usage (never billed): `open → waived`; waiving twice is a no-op; billed usage is 422 `late_usage_billed`. */
  async waive(em: EntityManager, organizationId: string, lateUsageId: string): Promise<LateUsage> {
    return this.move(em, organizationId, lateUsageId, 'open', 'waived');
  }

  /** Undoes a waiver (its exception was reopened): `waived → open`; anything else is left as it is. */
  async unwaive(em: EntityManager, organizationId: string, lateUsageId: string): Promise<LateUsage> {
    return this.move(em, organizationId, lateUsageId, 'waived', 'open');
  }

  private async move(em: EntityManager, organizationId: string, id: string, from: LateUsageStatus, to: LateUsageStatus): Promise<LateUsage> {
    return em.transactional(async (tx) => {
      const late = await this.lock(tx, organizationId, id);
      if (late.status === to) return late;
      if (late.status !== from) {
        if (to === 'waived') throw new UnprocessableError('late_usage_billed', `late usage ${late.id} is already billed`, 'late_usage_id');
        return late;
      }
      late.status = to;
      this.audit.record(tx, { organizationId, action: to === 'waived' ? 'late_usage.waived' : 'late_usage.reopened', resourceType: 'late_usage', resourceId: late.id, data: { from, to } });
      await tx.flush();
      return late;
    });
  }

  private async lock(em: EntityManager, organizationId: string, id: string): Promise<LateUsage> {
    const late = isUuid(id) ? await em.findOne(LateUsage, { id, organizationId }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true }) : null;
    if (!late) throw new NotFoundError('late usage', id, 'late_usage_id');
    return late;
  }

  /** Late usage of the organization, newest first; fetch `limit + 1` rows for `toPage`. */
  async list(em: EntityManager, organizationId: string, q: { limit: number; cursor?: string; status?: LateUsageStatus; invoice?: string; subscription?: string }): Promise<LateUsage[]> {
    const where: Record<string, unknown> = { organizationId, ...afterCursor(decodeCursor(q.cursor)) };
    if (q.status) where.status = q.status;
    if (q.invoice) where.invoiceId = q.invoice;
    if (q.subscription) where.subscriptionId = q.subscription;
    return em.find(LateUsage, where, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 });
  }
}
