import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { RequiredEntityData } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditService, insertRows, OutboxService, type AuditRecord, type OutboxEvent } from '@closebook/platform';
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
  /** The accounting date (`YYYY-MM-DD`, posting/accounting-dates.ts); a re-rated draft keeps its own. */
  issueDate: string;
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

/** Every row a rated invoice is stored as, built without touching the database. */
interface InvoiceRows {
  lines: RequiredEntityData<InvoiceLine>[];
  rollups: RequiredEntityData<InvoiceRollup>[];
  grants: RequiredEntityData<AllowanceGrantRecord>[];
  drawdowns: RequiredEntityData<AllowanceDrawdownRecord>[];
  expiries: RequiredEntityData<AllowanceExpiryRecord>[];
  announcements: OutboxEvent[];
}

/**
 * Persists rated invoices as drafts: the invoice, its lines (steps exactly as rated), the usage
 * lines' rollup links, and for period invoices the allowance ledger rows and the
 * `allowance.rolled_over` announcements — through the caller's transaction. New drafts are written
 * set-based (`writeMany`: one INSERT per table for a whole page of invoices, outside the unit of
 * work, whose change-set computation over the JSON columns was most of a rating's CPU). Re-rating a
 * draft replaces its lines (keeping the id of every line whose key survives) and ledger rows.
 */
@Injectable()
export class InvoiceWriter {
  constructor(private readonly audit: AuditService, private readonly outbox: OutboxService) {}

  /** New drafts, a constant number of statements whatever their number. Returns their ids, in order. */
  async writeMany(tx: EntityManager, all: readonly WriteInvoiceArgs[]): Promise<string[]> {
    if (!all.length) return [];
    const now = new Date();
    const ids = all.map(() => randomUUID());
    const rows = all.map((a, i) => rowsOf(a, ids[i], new Map(), now));
    const columns = all.map(invoiceColumns);
    await insertRows(
      tx,
      Invoice,
      columns.map((c, i) => ({ id: ids[i], createdAt: now, ...c, status: 'draft' as const, ratingCount: 1 })),
    );
    await this.insertChildren(tx, rows);
    await this.audit.insertMany(tx, all.map((a, i) => auditOf(a, ids[i], 'invoice.created', 1, columns[i].contentHash)));
    return ids;
  }

  /** One new draft (`writeMany` of one). Re-rating in place is `rewriteMany`. */
  async write(tx: EntityManager, a: WriteInvoiceArgs): Promise<Invoice> {
    const [id] = await this.writeMany(tx, [a]);
    return tx.findOneOrFail(Invoice, { id });
  }

  /**
   * Drafts re-rated in place, a constant number of statements whatever their number: their lines
   * (keeping the id of every line whose key survives) and ledger rows replaced, their rows updated
   * in one flush. The draft keeps its identity, number-to-be and draft window; what the rating
   * decides changes.
   */
  async rewriteMany(tx: EntityManager, items: readonly { args: WriteInvoiceArgs; existing: Invoice }[]): Promise<void> {
    if (!items.length) return;
    const ids = items.map((i) => i.existing.id);
    const old = await tx.find(InvoiceLine, { invoiceId: { $in: ids } }, { fields: ['id', 'lineKey', 'invoiceId'] });
    const lineIds = new Map<string, Map<string, string>>(ids.map((id) => [id, new Map()]));
    for (const l of old) lineIds.get(l.invoiceId)?.set(l.lineKey, l.id);
    for (const table of ['invoice_rollups', 'allowance_drawdowns', 'allowance_expiries', 'allowance_grants', 'invoice_lines']) {
      await tx.execute(`delete from ${table} where invoice_id = any(?::uuid[])`, [`{${ids.join(',')}}`]);
    }
    for (const l of old) tx.getUnitOfWork().unsetIdentity(l);
    const hashes = items.map(({ args: a, existing }) => {
      const c = invoiceColumns(a);
      existing.subtotal = c.subtotal;
      existing.taxAmount = c.taxAmount;
      existing.total = c.total;
      existing.taxRate = c.taxRate;
      existing.taxLine = c.taxLine;
      existing.contentHash = c.contentHash;
      existing.ratedAt = c.ratedAt;
      if (a.ratingInput !== undefined) existing.ratingInput = c.ratingInput;
      if (a.allowance !== undefined) existing.allowance = c.allowance;
      existing.ratingCount = existing.ratingCount + 1;
      return c.contentHash;
    });
    await tx.flush();
    const now = new Date();
    await this.insertChildren(tx, items.map(({ args, existing }) => rowsOf(args, existing.id, lineIds.get(existing.id)!, now)));
    await this.audit.insertMany(tx, items.map(({ args, existing }, i) => auditOf(args, existing.id, 'invoice.rerated', existing.ratingCount, hashes[i])));
  }

  /** The rows of many invoices, one INSERT per table (parents first), and their announcements. */
  private async insertChildren(tx: EntityManager, rows: InvoiceRows[]): Promise<void> {
    const lines = rows.flatMap((r) => r.lines);
    if (lines.length) await insertRows(tx, InvoiceLine, lines);
    const rollups = rows.flatMap((r) => r.rollups);
    if (rollups.length) await insertRows(tx, InvoiceRollup, rollups);
    const grants = rows.flatMap((r) => r.grants);
    if (grants.length) await insertRows(tx, AllowanceGrantRecord, grants);
    const drawdowns = rows.flatMap((r) => r.drawdowns);
    if (drawdowns.length) await insertRows(tx, AllowanceDrawdownRecord, drawdowns);
    const expiries = rows.flatMap((r) => r.expiries);
    if (expiries.length) await insertRows(tx, AllowanceExpiryRecord, expiries);
    await this.outbox.emitMany(tx, rows.flatMap((r) => r.announcements));
  }
}

/** The invoice row's columns that come from the rating (identity, status and rating count aside). */
function invoiceColumns(a: WriteInvoiceArgs) {
  const r = a.rated;
  return {
    organizationId: a.organizationId,
    customerId: a.customerId,
    subscriptionId: a.subscriptionId,
    kind: a.kind,
    billingPeriodId: a.billingPeriodId,
    sourceKey: a.sourceKey,
    issueDate: a.issueDate,
    periodStart: date(r.period_start),
    periodEnd: date(r.period_end),
    currency: r.currency,
    subtotal: r.subtotal,
    taxAmount: r.tax?.amount ?? zeroOf(r.subtotal),
    total: r.total,
    taxRate: r.tax?.rate ?? null,
    taxLine: r.tax,
    finalizeAfter: new Date(a.now.getTime() + a.draftWindowMinutes * 60_000),
    contentHash: contentHash(r),
    ratedAt: a.now,
    ratingInput: a.ratingInput ?? null,
    allowance: a.allowance ?? null,
  };
}

/** The audit entry of a written draft (`hash`: its content hash, computed once with its columns). */
function auditOf(a: WriteInvoiceArgs, invoiceId: string, action: 'invoice.created' | 'invoice.rerated', ratingCount: number, hash: string): AuditRecord {
  const r = a.rated;
  return {
    organizationId: a.organizationId,
    action,
    resourceType: 'invoice',
    resourceId: invoiceId,
    data: {
      kind: a.kind,
      subscription_id: a.subscriptionId,
      period_start: r.period_start,
      period_end: r.period_end,
      subtotal: r.subtotal,
      tax: r.tax?.amount ?? zeroOf(r.subtotal),
      total: r.total,
      lines: r.lines.length,
      rating_count: ratingCount,
      content_hash: hash,
    },
  };
}

/** The rows of one rated invoice (`lineIds`: ids kept for line keys that survive a re-rating). */
function rowsOf(a: WriteInvoiceArgs, invoiceId: string, lineIds: Map<string, string>, now: Date): InvoiceRows {
  const r = a.rated;
  const lines = r.lines.map((l, i) => {
    const src = a.sourceOf?.(l) ?? null;
    return {
      rated: l,
      row: {
        id: lineIds.get(l.line_key) ?? randomUUID(),
        createdAt: now,
        organizationId: a.organizationId,
        invoiceId,
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
      } satisfies RequiredEntityData<InvoiceLine>,
    };
  });

  const rollups: RequiredEntityData<InvoiceRollup>[] = [];
  for (const s of a.rollups ?? []) {
    const usage = lines.filter(({ rated: l }) => USAGE_LINE_TYPES.has(l.type) && l.product_key === s.product_key && (l.price_key ?? '') === s.price_key);
    const targets = usage.length ? usage.map((u) => u.row.id) : [null];
    for (const lineId of targets) {
      rollups.push({
        id: randomUUID(),
        createdAt: now,
        organizationId: a.organizationId,
        invoiceId,
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
  return { lines: lines.map((l) => l.row), rollups, ...ledgerRowsOf(a, invoiceId, now) };
}

function ledgerRowsOf(a: WriteInvoiceArgs, invoiceId: string, now: Date): Omit<InvoiceRows, 'lines' | 'rollups'> {
  const ledger = a.ledger;
  if (!ledger) return { grants: [], drawdowns: [], expiries: [], announcements: [] };
  const known = new Map<string, AllowanceGrant>();
  for (const g of [...(a.carriedIn ?? []), ...ledger.grants]) known.set(g.grant_id, g);
  const base = () => ({ id: randomUUID(), createdAt: now, organizationId: a.organizationId, subscriptionId: a.subscriptionId, invoiceId });
  return {
    grants: ledger.grants.map((g) => ({
      ...base(),
      grantId: g.grant_id,
      kind: g.kind,
      productKey: g.product_key ?? '',
      priceKey: g.price_key ?? null,
      quantity: g.quantity,
      grantedInPeriod: date(g.granted_in_period),
      expiresAfterPeriod: date(g.expires_after_period),
      carriedFromPeriod: g.carried_from_period ? date(g.carried_from_period) : null,
      grant: g,
    })),
    drawdowns: ledger.drawdowns.map((d) => ({ ...base(), grantId: d.grant_id, periodStart: date(d.period), productKey: d.product_key, priceKey: d.price_key, drawn: d.drawn })),
    expiries: ledger.expiries.map((e) => {
      const g = known.get(e.grant_id);
      return {
        ...base(),
        grantId: e.grant_id,
        kind: e.kind,
        periodStart: date(e.period),
        productKey: g?.product_key ?? '',
        priceKey: g?.price_key ?? null,
        unused: e.unused,
        carried: e.carried,
        expired: e.expired,
        carriedTo: e.carried_to,
      };
    }),
    announcements: ledger.rollovers.flatMap((ro) =>
      ro.grant
        ? [
            {
              organizationId: a.organizationId,
              type: 'allowance.rolled_over',
              // A re-rated draft that carries a different quantity announces the new figure once more.
              dedupeKey: `allowance.rolled_over:${ro.grant.grant_id}:${ro.carried}`,
              payload: {
                subscription_id: a.subscriptionId,
                customer_id: a.customerId,
                invoice_id: invoiceId,
                product_key: ro.product_key,
                price_key: ro.price_key,
                carried: ro.carried,
                cap: ro.cap,
                grant_id: ro.grant.grant_id,
                carried_from_period: ro.grant.carried_from_period ?? null,
                usable_from_period: ro.grant.granted_in_period,
                expires_after_period: ro.grant.expires_after_period,
              },
            },
          ]
        : [],
    ),
  };
}

/** "0.00" in the scale of an amount string ("124.00" → "0.00", "5" → "0"). */
export function zeroOf(amount: string): string {
  const scale = amount.split('.')[1]?.length ?? 0;
  return scale ? `0.${'0'.repeat(scale)}` : '0';
}
