import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditService, OutboxService } from '@closebook/platform';
import type { AllowanceGrant, AllowanceState, PeriodInvoice, RatedInvoice, RatedLine } from '@closebook/rating';
import { Invoice, type InvoiceKind, type StoredRatingInput } from '../entities/invoice.entity';
import { InvoiceLine, type LineSourceType } from '../entities/invoice-line.entity';
import { InvoiceRollup } from '../entities/invoice-rollup.entity';
import { AllowanceDrawdownRecord, AllowanceExpiryRecord, AllowanceGrantRecord } from '../entities/allowance-ledger.entity';
import { contentHash } from './invoice-content';

/** A rollup as a period rating read it (the snapshot stored in invoice_rollups). */
export interface RollupSnapshot {
  id: string;
  product_key: string;
  /** '' when the product is unkeyed (usage_rollups' convention). */
  price_key: string;
  event_count: string;
  aggregate: string;
  digest: string;
}

export interface LineSource {
  type: LineSourceType;
  id: string;
}

export interface WriteInvoiceArgs {
  organizationId: string;
  customerId: string;
  subscriptionId: string;
  kind: InvoiceKind;
  billingPeriodId: string | null;
  sourceKey: string;
  rated: RatedInvoice;
  now: Date;
  draftWindowMinutes: number;
  sourceOf?: (line: RatedLine) => LineSource | null;
  ratingInput?: StoredRatingInput | null;
  allowance?: AllowanceState[] | null;
  rollups?: RollupSnapshot[];
  ledger?: PeriodInvoice['allowance_ledger'];
  /** Grants carried into the period (to name the product of their expiries). */
  carriedIn?: AllowanceGrant[];
}

const USAGE_LINE_TYPES = new Set(['usage_included', 'usage_overage']);
const date = (s: string) => new Date(s);

/**
 * Persists a rated invoice as a draft: the invoice, its lines (steps exactly as rated), the usage
 * lines' rollup links, and for period invoices the allowance ledger rows and the
 * `allowance.rolled_over` announcements — through the caller's transaction. Re-rating a draft
 * replaces its lines (keeping the id of every line whose key survives) and ledger rows.
 */
@Injectable()
export class InvoiceWriter {
  constructor(private readonly audit: AuditService, private readonly outbox: OutboxService) {}

  async write(tx: EntityManager, a: WriteInvoiceArgs, existing?: Invoice): Promise<Invoice> {
    const r = a.rated;
    let invoice: Invoice;
    let lineIds = new Map<string, string>();
    if (existing) {
      invoice = existing;
      const old = await tx.find(InvoiceLine, { invoiceId: existing.id }, { fields: ['id', 'lineKey'] });
      lineIds = new Map(old.map((l) => [l.lineKey, l.id]));
      for (const table of ['invoice_rollups', 'allowance_drawdowns', 'allowance_expiries', 'allowance_grants']) {
        await tx.execute(`delete from ${table} where invoice_id = ?`, [existing.id]);
      }
      await tx.execute('delete from invoice_lines where invoice_id = ?', [existing.id]);
      for (const l of old) tx.getUnitOfWork().unsetIdentity(l);
      invoice.ratingCount = existing.ratingCount + 1;
    } else {
      invoice = tx.create(Invoice, {
        organizationId: a.organizationId,
        customerId: a.customerId,
        subscriptionId: a.subscriptionId,
        kind: a.kind,
        billingPeriodId: a.billingPeriodId,
        sourceKey: a.sourceKey,
        periodStart: date(r.period_start),
        periodEnd: date(r.period_end),
        status: 'draft',
        currency: r.currency,
        subtotal: r.subtotal,
        taxAmount: r.tax?.amount ?? zeroOf(r.subtotal),
        total: r.total,
        taxRate: r.tax?.rate ?? null,
        taxLine: r.tax,
        finalizeAfter: new Date(a.now.getTime() + a.draftWindowMinutes * 60_000),
        contentHash: contentHash(r),
        ratedAt: a.now,
        ratingCount: 1,
        ratingInput: a.ratingInput ?? null,
        allowance: a.allowance ?? null,
      });
    }
    invoice.subtotal = r.subtotal;
    invoice.taxAmount = r.tax?.amount ?? zeroOf(r.subtotal);
    invoice.total = r.total;
    invoice.taxRate = r.tax?.rate ?? null;
    invoice.taxLine = r.tax;
    invoice.contentHash = contentHash(r);
    invoice.ratedAt = a.now;
    if (a.ratingInput !== undefined) invoice.ratingInput = a.ratingInput;
    if (a.allowance !== undefined) invoice.allowance = a.allowance;
    await tx.flush();

    const lines = r.lines.map((l, i) => {
      const src = a.sourceOf?.(l) ?? null;
      const line = tx.create(InvoiceLine, {
        ...(lineIds.has(l.line_key) ? { id: lineIds.get(l.line_key) } : {}),
        organizationId: a.organizationId,
        invoiceId: invoice.id,
        position: i + 1,
        lineKey: l.line_key,
        type: l.type,
        productKey: l.product_key,
        priceKey: l.price_key,
        periodStart: date(l.period_start),
        periodEnd: date(l.period_end),
        quantity: l.quantity,
        unitAmount: l.unit_amount,
        tiers: l.tiers,
        price: l.price,
        amountExact: l.amount_exact,
        amount: l.amount,
        currency: l.currency,
        description: l.description,
        proration: l.proration,
        steps: l.steps,
        meta: l.meta,
        sourceType: src?.type ?? null,
        sourceId: src?.id ?? null,
      });
      return { rated: l, line };
    });

    for (const s of a.rollups ?? []) {
      const usage = lines.filter(({ rated: l }) => USAGE_LINE_TYPES.has(l.type) && l.product_key === s.product_key && (l.price_key ?? '') === s.price_key);
      const targets = usage.length ? usage.map((u) => u.line.id) : [null];
      for (const lineId of targets) {
        tx.create(InvoiceRollup, {
          organizationId: a.organizationId,
          invoiceId: invoice.id,
          invoiceLineId: lineId,
          rollupId: s.id,
          productKey: s.product_key,
          priceKey: s.price_key,
          eventCount: s.event_count,
          aggregate: s.aggregate,
          digest: s.digest,
        });
      }
    }

    if (a.ledger) await this.writeLedger(tx, a, invoice, a.ledger);
    await tx.flush();
    this.audit.record(tx, {
      organizationId: a.organizationId,
      action: existing ? 'invoice.rerated' : 'invoice.created',
      resourceType: 'invoice',
      resourceId: invoice.id,
      data: {
        kind: a.kind,
        subscription_id: a.subscriptionId,
        period_start: r.period_start,
        period_end: r.period_end,
        subtotal: r.subtotal,
        tax: invoice.taxAmount,
        total: r.total,
        lines: r.lines.length,
        rating_count: invoice.ratingCount,
        content_hash: invoice.contentHash,
      },
    });
    await tx.flush();
    return invoice;
  }

  private async writeLedger(tx: EntityManager, a: WriteInvoiceArgs, invoice: Invoice, ledger: PeriodInvoice['allowance_ledger']): Promise<void> {
    const known = new Map<string, AllowanceGrant>();
    for (const g of [...(a.carriedIn ?? []), ...ledger.grants]) known.set(g.grant_id, g);
    const base = { organizationId: a.organizationId, subscriptionId: a.subscriptionId, invoiceId: invoice.id };
    for (const g of ledger.grants) {
      tx.create(AllowanceGrantRecord, {
        ...base,
        grantId: g.grant_id,
        kind: g.kind,
        productKey: g.product_key ?? '',
        priceKey: g.price_key ?? null,
        quantity: g.quantity,
        grantedInPeriod: date(g.granted_in_period),
        expiresAfterPeriod: date(g.expires_after_period),
        carriedFromPeriod: g.carried_from_period ? date(g.carried_from_period) : null,
        grant: g,
      });
    }
    for (const d of ledger.drawdowns) {
      tx.create(AllowanceDrawdownRecord, { ...base, grantId: d.grant_id, periodStart: date(d.period), productKey: d.product_key, priceKey: d.price_key, drawn: d.drawn });
    }
    for (const e of ledger.expiries) {
      const g = known.get(e.grant_id);
      tx.create(AllowanceExpiryRecord, {
        ...base,
        grantId: e.grant_id,
        kind: e.kind,
        periodStart: date(e.period),
        productKey: g?.product_key ?? '',
        priceKey: g?.price_key ?? null,
        unused: e.unused,
        carried: e.carried,
        expired: e.expired,
        carriedTo: e.carried_to,
      });
    }
    await tx.flush();
    for (const ro of ledger.rollovers) {
      if (!ro.grant) continue;
      await this.outbox.emit(tx, {
        organizationId: a.organizationId,
        type: 'allowance.rolled_over',
        // A re-rated draft that carries a different quantity announces the new figure once more.
        dedupeKey: `allowance.rolled_over:${ro.grant.grant_id}:${ro.carried}`,
        payload: {
          subscription_id: a.subscriptionId,
          customer_id: a.customerId,
          invoice_id: invoice.id,
          product_key: ro.product_key,
          price_key: ro.price_key,
          carried: ro.carried,
          cap: ro.cap,
          grant_id: ro.grant.grant_id,
          carried_from_period: ro.grant.carried_from_period ?? null,
          usable_from_period: ro.grant.granted_in_period,
          expires_after_period: ro.grant.expires_after_period,
        },
      });
    }
  }
}

/** "0.00" in the scale of an amount string ("124.00" → "0.00", "5" → "0"). */
export function zeroOf(amount: string): string {
  const scale = amount.split('.')[1]?.length ?? 0;
  return scale ? `0.${'0'.repeat(scale)}` : '0';
}
