import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec, formatDecimal } from '@closebook/money';
import { DomainError, NotFoundError, OrganizationsService, UnprocessableError } from '@closebook/platform';
import { CatalogService } from '@closebook/catalog';
import { RollupsService, stalePairsOf, storedRollupsOf } from '@closebook/metering';
import {
  BillingPeriod,
  Customer,
  OnDemandCharge,
  Subscription,
  SubscriptionsService,
} from '@closebook/subscriptions';
import {
  ratePeriodInvoice,
  type AdjustmentInput,
  type AllowanceGrant,
  type CreditInput,
  type OnDemandCharge as RatingCharge,
  type PeriodInvoice,
  type PeriodInvoiceInput,
  type RatedLine,
} from '@closebook/rating';
import { Invoice, type StoredRatingInput } from '../entities/invoice.entity';
import { PendingItem } from '../entities/pending-item.entity';
import { InvoiceRollup } from '../entities/invoice-rollup.entity';
import { periodIssueDate } from '../posting/accounting-dates';
import { InvoiceWriter, type LineSource, type RollupSnapshot, type WriteInvoiceArgs } from './invoice-writer';
import { lockSubscriptions, PERIOD_INVOICE_STALE, rate } from './invoice-content';
import { pairId, PeriodRatingReads, usageOf, type BilledUsageInput } from './period-rating-reads';

export { usageOf } from './period-rating-reads';

const iso = (d: Date) => d.toISOString();
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The inputs of one period rating: what the core rates, what is stored with the invoice, and where lines come from. */
export interface BuiltPeriodInput {
  input: PeriodInvoiceInput;
  stored: StoredRatingInput;
  rollups: RollupSnapshot[];
  sources: Map<string, LineSource>;
}

export interface RatePeriodResult {
  invoice: Invoice;
  /** False when the invoice existed already (a retried or duplicated job). */
  created: boolean;
}

/** Invoices rated by one period end from which the tables it filled are analyzed (`refreshStatistics`). */
export const STATISTICS_REFRESH_AFTER = 500;

/** One period of `rateMany`: its invoice (new or found), or why it was refused. */
export interface RateManyResult {
  billing_period_id: string;
  /** False when the invoice existed already, or on refusal. */
  created: boolean;
  invoice_id?: string;
  error?: DomainError;
}

export interface UpcomingInvoice {
  subscription_id: string;
  period: { start: string; end: string };
  as_of: string;
  estimate: true;
  invoice: PeriodInvoice;
}

/** A unique violation on one of the "one invoice per …" keys: a concurrent rating won. */
export function isDuplicateInvoice(err: unknown): boolean {
  const c = (err as { constraint?: string } | null)?.constraint;
  return c === 'invoices_one_period_invoice' || c === 'invoices_one_opening_invoice' || c === 'invoices_organization_id_source_key_unique';
}

/**
 * The period-end rating of one subscription period (SPEC §2–§4): loads what `ratePeriodInvoice`
 * needs — the states in force over P as segments (plan, seat and add-on changes from
 * subscription_changes), the rollups of P, the rollover grants carried into P from the allowance
 * ledger, unbilled on-demand charges and deferred/adjustment/credit items, P+1's state for the
 * in-advance fees, the customer's tax rate — rates it with the pure core, and writes a draft with
 * its lines, rollup links and ledger rows in one transaction. Also re-rates drafts whose rollups
 * changed and computes the upcoming invoice without writing.
 */
@Injectable()
export class PeriodRatingService {
  private readonly logger = new Logger('PeriodRatingService');
  /** The reads a rating is built from (states, carried grants), shared with read-only re-ratings. */
  readonly reads: PeriodRatingReads;

  constructor(
    private readonly subscriptions: SubscriptionsService,
    private readonly catalog: CatalogService,
    private readonly rollups: RollupsService,
    private readonly orgs: OrganizationsService,
    private readonly writer: InvoiceWriter,
  ) {
    this.reads = new PeriodRatingReads(subscriptions, catalog);
  }

  /**
   * The usage rating inputs of billed period invoices, rebuilt from the database with this rating's
   * own reads and the invoices' billed rollups, without writing (`PeriodRatingReads.billedUsageInputs`):
   * what reconciliation re-rates usage lines from.
   */
  async billedUsageInputs(em: EntityManager, invoiceIds: readonly string[]): Promise<Map<string, BilledUsageInput>> {
    return this.reads.billedUsageInputs(em, invoiceIds);
  }

  /**
   * Rates the period invoice of a billing period that has ended, after every earlier period of the
   * subscription (the allowance ledger is a chain). Idempotent: an existing invoice is returned
   * (unique constraint + subscription lock), so a retried or duplicated job has one effect.
   */
  async ratePeriod(em: EntityManager, billingPeriodId: string, now = new Date()): Promise<RatePeriodResult> {
    const target = await em.findOne(BillingPeriod, { id: billingPeriodId });
    if (!target) throw new NotFoundError('billing period', billingPeriodId);
    if (target.periodEnd > now) {
      throw new UnprocessableError('period_not_ended', `billing period ${billingPeriodId} ends at ${iso(target.periodEnd)}`, 'billing_period_id');
    }
    const chain = await em.find(BillingPeriod, { subscriptionId: target.subscriptionId, seq: { $lte: target.seq } }, { orderBy: { seq: 'asc' } });
    // One read for the whole chain: only the periods without an invoice are rated (each re-checks under the lock).
    const invoiced = new Map(
      (await em.find(Invoice, { kind: 'period', billingPeriodId: { $in: chain.map((p) => p.id) } }, { refresh: true })).map((i) => [i.billingPeriodId, i]),
    );
    let result: RatePeriodResult | null = null;
    for (const p of chain) {
      const found = invoiced.get(p.id);
      result = found ? { invoice: found, created: false } : await this.rateOne(em, p, now);
    }
    return result as RatePeriodResult;
  }

  /**
   * `ratePeriod` of a page of billing periods (a period-end job's batch), set-based: the periods
   * whose earlier periods are all invoiced (the usual month-end case) are rated in one transaction
   * holding all their subscriptions' locks, read with a constant number of statements and written
   * with one INSERT per table. Anything else — an earlier period still to rate, a second period of
   * the same subscription, or a page that cannot commit — goes through `ratePeriod` one by one, so
   * the outcome per period is exactly the single path's. A refused period (`DomainError`) is
   * reported in its result and never stops the others; other errors are thrown.
   */
  async rateMany(em: EntityManager, billingPeriodIds: readonly string[], now = new Date()): Promise<RateManyResult[]> {
    const ids = [...new Set(billingPeriodIds)];
    const out = new Map<string, RateManyResult>();
    const valid = ids.filter((id) => UUID_RE.test(id));
    const rows = valid.length
      ? await em.execute<{ id: string; subscription_id: string; period_start: Date; period_end: Date; invoiced: boolean; earlier_unrated: boolean }[]>(
          `select t.id, t.subscription_id, t.period_start, t.period_end,
                  exists (select 1 from invoices i where i.kind = 'period' and i.billing_period_id = t.id) as invoiced,
                  exists (select 1 from billing_periods e where e.subscription_id = t.subscription_id and e.seq < t.seq
                            and not exists (select 1 from invoices i where i.kind = 'period' and i.billing_period_id = e.id)) as earlier_unrated
           from billing_periods t where t.id = any(?::uuid[])
           order by t.subscription_id, t.seq`,
          [`{${valid.join(',')}}`],
        )
      : [];
    const seen = new Set<string>();
    const page: typeof rows = [];
    for (const r of rows) {
      if (r.invoiced || r.earlier_unrated || seen.has(r.subscription_id) || new Date(r.period_end) > now) continue;
      seen.add(r.subscription_id);
      page.push(r);
    }
    if (page.length) {
      const rollupsOf = page.map((r) => ({ subscription_id: r.subscription_id, period_start: r.period_start }));
      const stale = await stalePairsOf(em, rollupsOf);
      if (stale.length) await this.rollups.recomputeMany(em, stale);
      try {
        for (const r of await em.fork().transactional((tx) => this.ratePage(tx, page.map((x) => x.id), now))) out.set(r.billing_period_id, r);
      } catch (err) {
        // The page could not commit (a concurrent rating won a period, say): each period goes the single path.
        this.logger.warn({ err, periods: page.length }, 'a rating page did not commit; rating its periods one by one');
      }
    }
    for (const id of ids) {
      if (out.has(id)) continue;
      try {
        const res = await this.ratePeriod(em.fork(), id, now);
        out.set(id, { billing_period_id: id, created: res.created, invoice_id: res.invoice.id });
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
        out.set(id, { billing_period_id: id, created: false, error: err });
      }
    }
    return ids.map((id) => out.get(id)!);
  }

  /**
   * After a period end that rated `rated` invoices: refreshes the planner's statistics of the tables
   * it filled, when that is many rows. The month-end reads that follow (finalization reads each
   * chunk's lines, reconciliation every line) are planned on row counts; planned on counts from
   * before the rating — autovacuum may be off, as on the CI box, or not have run yet — they scan a
   * whole table per chunk instead of its index.
   */
  async refreshStatistics(em: EntityManager, rated: number): Promise<boolean> {
    if (rated < STATISTICS_REFRESH_AFTER) return false;
    await em.execute('analyze invoices, invoice_lines, invoice_rollups, allowance_grants, allowance_drawdowns, allowance_expiries');
    return true;
  }

  /** Rates ended, chain-ready periods of distinct subscriptions in the caller's transaction (see `rateMany`). */
  private async ratePage(tx: EntityManager, periodIds: string[], now: Date): Promise<RateManyResult[]> {
    const periods = await tx.find(BillingPeriod, { id: { $in: periodIds } }, { orderBy: { subscriptionId: 'asc' } });
    await lockSubscriptions(tx, periods.map((p) => p.subscriptionId));
    const invoiced = new Map(
      (await tx.find(Invoice, { kind: 'period', billingPeriodId: { $in: periodIds } }, { fields: ['id', 'billingPeriodId'] })).map((i) => [i.billingPeriodId, i.id]),
    );
    const results: RateManyResult[] = [];
    const todo = periods.filter((p) => {
      const found = invoiced.get(p.id);
      if (found) results.push({ billing_period_id: p.id, created: false, invoice_id: found });
      return !found;
    });
    const subs = new Map((await tx.find(Subscription, { id: { $in: todo.map((p) => p.subscriptionId) } })).map((s) => [s.id, s]));
    const items = todo.map((p) => ({ sub: subs.get(p.subscriptionId)!, p }));
    const built = await this.buildMany(tx, items, { rollups: 'stored' });
    const windows = new Map<string, number>();
    for (const orgId of new Set(items.map((i) => i.sub.organizationId))) windows.set(orgId, (await this.orgs.get(tx, orgId)).draftWindowMinutes);
    const writes: WriteInvoiceArgs[] = [];
    const written: string[] = [];
    items.forEach(({ sub, p }, i) => {
      const b = built[i];
      let rated: PeriodInvoice;
      try {
        rated = rate(`the period ${iso(p.periodStart)} of subscription ${sub.id}`, () => ratePeriodInvoice(b.input));
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
        results.push({ billing_period_id: p.id, created: false, error: err });
        return;
      }
      writes.push(this.periodWrite(sub, p, rated, b, now, windows.get(sub.organizationId)!));
      written.push(p.id);
    });
    const invoiceIds = await this.writer.writeMany(tx, writes);
    written.forEach((id, i) => results.push({ billing_period_id: id, created: true, invoice_id: invoiceIds[i] }));
    return results;
  }

  /** What the writer stores for a newly rated period invoice. */
  private periodWrite(sub: Subscription, p: BillingPeriod, rated: PeriodInvoice, built: BuiltPeriodInput, now: Date, draftWindowMinutes: number): WriteInvoiceArgs {
    return {
      organizationId: sub.organizationId,
      customerId: sub.customerId,
      subscriptionId: sub.id,
      kind: 'period',
      billingPeriodId: p.id,
      sourceKey: `period:${p.id}`,
      issueDate: periodIssueDate(p.periodEnd),
      rated,
      now,
      draftWindowMinutes,
      sourceOf: (l) => sourceOf(l, built.sources),
      ratingInput: built.stored,
      allowance: rated.allowance,
      rollups: built.rollups,
      ledger: rated.allowance_ledger,
      carriedIn: built.input.grants,
    };
  }

  private async rateOne(em: EntityManager, p: BillingPeriod, now: Date): Promise<RatePeriodResult> {
    // Each child refreshes the rollups it rates (metering's recompute, its own transaction).
    await this.rollups.ensureFresh(em, p.subscriptionId, p.periodStart);
    try {
      return await em.transactional(async (tx) => {
        await lockSubscriptions(tx, [p.subscriptionId]);
        const existing = await tx.findOne(Invoice, { kind: 'period', billingPeriodId: p.id });
        if (existing) return { invoice: existing, created: false };
        const sub = await tx.findOneOrFail(Subscription, { id: p.subscriptionId });
        const built = await this.build(tx, sub, p, { rollups: 'stored' });
        const rated = rate(`the period ${iso(p.periodStart)} of subscription ${sub.id}`, () => ratePeriodInvoice(built.input));
        const org = await this.orgs.get(tx, sub.organizationId);
        const invoice = await this.writer.write(tx, this.periodWrite(sub, p, rated, built, now, org.draftWindowMinutes));
        return { invoice, created: true };
      });
    } catch (err) {
      if (!isDuplicateInvoice(err)) throw err;
      const existing = await em.fork().findOneOrFail(Invoice, { kind: 'period', billingPeriodId: p.id });
      return { invoice: existing, created: false };
    }
  }

  /**
   * Whether a period invoice's rollups changed since it was rated (a count, aggregate or digest
   * differs, or a new price key appeared): compares the stored rollups with the invoice's snapshot.
   */
  async isStale(em: EntityManager, invoice: Invoice): Promise<boolean> {
    if (invoice.kind !== 'period') return false;
    const [row] = await em.execute<{ stale: boolean }[]>(`select ${PERIOD_INVOICE_STALE} as stale from invoices i where i.id = ?`, [invoice.id]);
    return row?.stale ?? false;
  }

  /**
   * Re-rates a draft period invoice when its rollups changed (late events for a draft), after
   * recomputing them from raw events unless `recompute` is false (the caller just read them).
   */
  async refresh(em: EntityManager, invoice: Invoice, now = new Date(), opts: { recompute?: boolean } = {}): Promise<boolean> {
    if (invoice.kind !== 'period' || invoice.status !== 'draft') return false;
    if (opts.recompute ?? true) await this.rollups.recompute(em, invoice.subscriptionId, invoice.periodStart);
    if (!(await this.isStale(em, invoice))) return false;
    return em.transactional(async (tx) => {
      await lockSubscriptions(tx, [invoice.subscriptionId]);
      const inv = await tx.findOneOrFail(Invoice, { id: invoice.id }, { refresh: true });
      if (inv.status !== 'draft' || !(await this.isStale(tx, inv))) return false;
      await this.rerate(tx, inv, now);
      return true;
    });
  }

  /**
   * Re-rates a draft period invoice in the caller's transaction (which holds the subscription lock):
   * the same stored input with the rollups and the carried-in grants as they are now; then every
   * later draft period invoice of the subscription, whose carried-in grants may have changed, once
   * each, oldest first (each reads the grants its predecessor just rewrote).
   */
  async rerate(tx: EntityManager, invoice: Invoice, now: Date): Promise<Invoice> {
    await this.rerateMany(tx, [invoice], now);
    return invoice;
  }

  /**
   * `rerate` for many drafts at once (finalization re-rates a chunk's stale drafts), in the caller's
   * transaction, which holds their subscriptions' locks; at most one draft per subscription. They
   * are re-rated together (`rerateSet`); then the later drafts of their subscriptions (whose
   * carried-in grants may have changed) one by one, once each and oldest first, each reading the
   * grants its predecessor just rewrote. A refusal throws before anything is written.
   */
  async rerateMany(tx: EntityManager, invoices: readonly Invoice[], now: Date): Promise<void> {
    if (!invoices.length) return;
    const subs = new Set(invoices.map((i) => i.subscriptionId));
    if (subs.size !== invoices.length) throw new Error('rerateMany: at most one draft per subscription');
    await this.rerateSet(tx, invoices, now);
    const later = await tx.find(Invoice, { subscriptionId: { $in: [...subs] }, kind: 'period', status: 'draft' }, { orderBy: { subscriptionId: 'asc', periodStart: 'asc' } });
    const ratedFrom = new Map(invoices.map((i) => [i.subscriptionId, i.periodStart.getTime()]));
    for (const next of later) if (next.periodStart.getTime() > ratedFrom.get(next.subscriptionId)!) await this.rerateSet(tx, [next], now);
  }

  /**
   * The drafts alone re-rated in place: their inputs read with one statement per kind, each rated
   * by the same core and built by `rerateArgs`, all rewritten with one statement per table
   * (`InvoiceWriter.rewriteMany`). Every draft is checked before anything is read or written.
   */
  private async rerateSet(tx: EntityManager, invoices: readonly Invoice[], now: Date): Promise<void> {
    for (const inv of invoices) assertRerateable(inv);
    const pairs = invoices.map((i) => ({ subscription_id: i.subscriptionId, period_start: i.periodStart }));
    const rollups = groupBy(await storedRollupsOf(tx, pairs), (r) => pairId(r.subscription_id, r.period_start));
    const grants = await this.carriedGrantsMany(tx, pairs);
    const sources = await this.sourcesOfMany(tx, invoices.map((i) => i.id));
    const windows = new Map<string, number>();
    for (const orgId of new Set(invoices.map((i) => i.organizationId))) windows.set(orgId, (await this.orgs.get(tx, orgId)).draftWindowMinutes);
    const items = invoices.map((existing) => {
      const key = pairId(existing.subscriptionId, existing.periodStart);
      const args = rerateArgs(existing, (rollups.get(key) ?? []).map(snapshotOf), grants.get(key) ?? [], sources.get(existing.id) ?? new Map(), windows.get(existing.organizationId)!, now);
      return { args, existing };
    });
    await this.writer.rewriteMany(tx, items);
  }

  /**
   * What the period invoice of the period in force now would be if the period closed now (SPEC §4
   * preview): the pipeline's own computation over rollups recomputed live from raw events, without
   * writing anything. An estimate: late events and the ledger of a period not yet invoiced may move it.
   */
  async upcoming(em: EntityManager, organizationId: string, subscriptionId: string, now = new Date()): Promise<UpcomingInvoice> {
    const sub = await this.subscriptions.byId(em, organizationId, subscriptionId);
    const ref = sub.startedAt > now ? sub.startedAt : now;
    const p =
      (await em.findOne(BillingPeriod, { subscriptionId: sub.id, periodStart: { $lte: ref }, periodEnd: { $gt: ref } })) ??
      (await em.findOne(BillingPeriod, { subscriptionId: sub.id }, { orderBy: { seq: 'desc' } }));
    if (!p) throw new UnprocessableError('no_current_period', `subscription ${sub.id} has no billing period`, 'subscription_id');
    const built = await this.build(em, sub, p, { rollups: 'live' });
    const invoice = rate(`the upcoming invoice of subscription ${sub.id}`, () => ratePeriodInvoice(built.input));
    return { subscription_id: sub.id, period: { start: iso(p.periodStart), end: iso(p.periodEnd) }, as_of: iso(now), estimate: true, invoice };
  }

  /** Assembles the rating input of period `p` (see the class comment). */
  async build(em: EntityManager, sub: Subscription, p: BillingPeriod, opts: { rollups: 'stored' | 'live' }): Promise<BuiltPeriodInput> {
    const [built] = await this.buildMany(em, [{ sub, p }], opts);
    return built;
  }

  /**
   * `build` of many periods (of distinct subscriptions) with one read per kind of input whatever
   * their number: customers, states (subscriptions, add-ons, changes), rollups, carried grants,
   * on-demand charges and pending items, and which of those some invoice already bills.
   */
  async buildMany(em: EntityManager, items: readonly { sub: Subscription; p: BillingPeriod }[], opts: { rollups: 'stored' | 'live' }): Promise<BuiltPeriodInput[]> {
    if (!items.length) return [];
    const subIds = [...new Set(items.map((i) => i.sub.id))];
    const latestEnd = new Date(Math.max(...items.map((i) => i.p.periodEnd.getTime())));
    const pairs = items.map(({ sub, p }) => ({ subscription_id: sub.id, period_start: p.periodStart }));
    // One after another: in a transaction they share one connection, which runs one query at a time.
    const customers = await em.find(Customer, { id: { $in: [...new Set(items.map((i) => i.sub.customerId))] } });
    const states = await this.subscriptions.segmentsAndEndMany(em, items.map(({ sub, p }) => ({ subscriptionId: sub.id, from: p.periodStart, to: p.periodEnd })));
    const grants = await this.carriedGrantsMany(em, pairs);
    const charges = await em.find(OnDemandCharge, { subscriptionId: { $in: subIds }, date: { $lt: latestEnd } }, { orderBy: { date: 'asc', id: 'asc' } });
    const pending = await em.find(
      PendingItem,
      { subscriptionId: { $in: subIds }, billableFrom: { $lt: latestEnd } },
      { orderBy: { billableFrom: 'asc', sourceId: 'asc', createdAt: 'asc', id: 'asc' } },
    );
    const rollups = new Map<string, { id: string; product_key: string; price_key: string; event_count: string; aggregate: string; digest: string }[]>();
    if (opts.rollups === 'stored') {
      for (const [k, rows] of groupBy(await storedRollupsOf(em, pairs), (r) => pairId(r.subscription_id, r.period_start))) rollups.set(k, rows);
    } else {
      for (const { sub, p } of items) rollups.set(pairId(sub.id, p.periodStart), (await this.rollups.compute(em, sub.id, p.periodStart)).map((r) => ({ ...r, id: '' })));
    }
    const billedCharges = await this.billedSources(em, 'on_demand_charge', charges.map((c) => c.id));
    const billedItems = await this.billedSources(em, 'pending_item', pending.map((i) => i.id));
    const customerById = new Map(customers.map((c) => [c.id, c]));
    const chargesOf = groupBy(charges, (c) => c.subscriptionId);
    const pendingOf = groupBy(pending, (i) => i.subscriptionId);
    // In the order their changes took effect; within one change, as the rating core produced them (credits first).
    const rank = (i: PendingItem) => (i.kind === 'deferred_line' && (i.payload as RatedLine).type === 'proration_credit' ? 0 : 1);
    const inChangeOrder = (a: PendingItem, b: PendingItem) =>
      a.billableFrom.getTime() - b.billableFrom.getTime() || (a.sourceId < b.sourceId ? -1 : a.sourceId > b.sourceId ? 1 : 0) || rank(a) - rank(b);

    const out: BuiltPeriodInput[] = [];
    for (const [i, { sub, p }] of items.entries()) {
      const customer = customerById.get(sub.customerId);
      if (!customer) throw new NotFoundError('customer', sub.customerId);
      const { segments, renews, next } = await this.reads.ratingStates(em, sub, p, states[i]);
      const periodRollups = (rollups.get(pairId(sub.id, p.periodStart)) ?? []).map(snapshotOf);
      const sources = new Map<string, LineSource>();
      const onDemand: RatingCharge[] = [];
      for (const c of chargesOf.get(sub.id) ?? []) {
        if (c.date >= p.periodEnd || billedCharges.has(c.id)) continue;
        onDemand.push({ charge_id: c.id, description: c.description, quantity: c.quantity, unit_amount: c.unitAmount, date: iso(c.date), ...(c.productKey ? { product_key: c.productKey } : {}) });
        sources.set(`on_demand:${c.id}`, { type: 'on_demand_charge', id: c.id });
      }
      const deferred: RatedLine[] = [];
      const adjustments: AdjustmentInput[] = [];
      const credits: CreditInput[] = [];
      for (const item of [...(pendingOf.get(sub.id) ?? [])].sort(inChangeOrder)) {
        if (item.billableFrom >= p.periodEnd || billedItems.has(item.id)) continue;
        if (item.kind === 'deferred_line') {
          const line = item.payload as RatedLine;
          deferred.push(line);
          sources.set(line.line_key, { type: 'pending_item', id: item.id });
        } else if (item.kind === 'adjustment') {
          adjustments.push({ ...(item.payload as AdjustmentInput), adjustment_id: item.id });
          sources.set(`adjustment:${item.id}`, { type: 'pending_item', id: item.id });
        } else {
          credits.push({ ...(item.payload as CreditInput), credit_id: item.id });
          sources.set(`credit:${item.id}`, { type: 'pending_item', id: item.id });
        }
      }
      const carried = grants.get(pairId(sub.id, p.periodStart)) ?? [];
      const stored: StoredRatingInput = {
        subscription_id: sub.id,
        subscription_start: iso(sub.startedAt),
        anchor_day: sub.billingAnchor,
        period: { start: iso(p.periodStart), end: iso(p.periodEnd) },
        segments,
        renews,
        ...(next ? { next } : {}),
        grants: carried,
        on_demand: onDemand,
        adjustments,
        credits,
        deferred_lines: deferred,
        tax_rate: taxRateOf(customer),
      };
      out.push({ input: { ...stored, usage: usageOf(periodRollups) }, stored, rollups: periodRollups, sources });
    }
    return out;
  }

  /**
   * Rollover grants live in the period starting at `periodStart`, with `drawn_before` = what the
   * ledger recorded drawn from them in earlier periods.
   */
  async carriedGrants(em: EntityManager, subscriptionId: string, periodStart: Date): Promise<AllowanceGrant[]> {
    return (await this.carriedGrantsMany(em, [{ subscription_id: subscriptionId, period_start: periodStart }])).get(pairId(subscriptionId, periodStart)) ?? [];
  }

  /** `carriedGrants` of many (subscription, period start) pairs in one read, by `pairId` (`PeriodRatingReads`). */
  private async carriedGrantsMany(em: EntityManager, pairs: readonly { subscription_id: string; period_start: Date }[]): Promise<Map<string, AllowanceGrant[]>> {
    return this.reads.carriedGrantsMany(em, pairs);
  }

  /** Which of `ids` some invoice line already bills. */
  private async billedSources(em: EntityManager, type: string, ids: string[]): Promise<Set<string>> {
    if (!ids.length) return new Set();
    const rows = await em.execute<{ source_id: string }[]>(
      `select distinct source_id from invoice_lines where source_type = ? and source_id = any(array[?]::uuid[])`,
      [type, ids],
    );
    return new Set(rows.map((r) => r.source_id));
  }


  /** The sources of the invoices' lines (kept across a re-rating), by invoice id and line key: one read. */
  private async sourcesOfMany(em: EntityManager, invoiceIds: readonly string[]): Promise<Map<string, Map<string, LineSource>>> {
    const rows = await em.execute<{ invoice_id: string; line_key: string; source_type: LineSource['type']; source_id: string }[]>(
      'select invoice_id, line_key, source_type, source_id from invoice_lines where invoice_id = any(?::uuid[]) and source_type is not null',
      [`{${invoiceIds.join(',')}}`],
    );
    const out = new Map<string, Map<string, LineSource>>();
    for (const r of rows) {
      if (!out.has(r.invoice_id)) out.set(r.invoice_id, new Map());
      out.get(r.invoice_id)!.set(r.line_key, { type: r.source_type, id: r.source_id });
    }
    return out;
  }

  /** The rollup snapshot of an invoice (one row per rollup). */
  async snapshotOf(em: EntityManager, invoiceId: string): Promise<RollupSnapshot[]> {
    const rows = await em.find(InvoiceRollup, { invoiceId }, { orderBy: { productKey: 'asc', priceKey: 'asc' } });
    const seen = new Map<string, RollupSnapshot>();
    for (const r of rows) {
      seen.set(r.rollupId, { id: r.rollupId, product_key: r.productKey, price_key: r.priceKey, event_count: r.eventCount, aggregate: r.aggregate, digest: r.digest });
    }
    return [...seen.values()];
  }
}

/** The customer's tax rate for rating: null (no tax line) when it is 0. */
export function taxRateOf(customer: Customer): string | null {
  return dec(customer.taxRate).gt(0) ? formatDecimal(dec(customer.taxRate)) : null;
}

function assertRerateable(invoice: Invoice): StoredRatingInput {
  if (invoice.status !== 'draft') throw new UnprocessableError('invoice_finalized', `invoice ${invoice.id} is ${invoice.status} and never changes`, 'invoice_id');
  if (!invoice.ratingInput) throw new UnprocessableError('not_rerateable', `invoice ${invoice.id} has no stored rating input`);
  return invoice.ratingInput;
}

/** What re-rating a draft writes: its stored input with the rollups and carried-in grants as they are now. */
function rerateArgs(
  invoice: Invoice,
  rollups: RollupSnapshot[],
  grants: AllowanceGrant[],
  sources: Map<string, LineSource>,
  draftWindowMinutes: number,
  now: Date,
): WriteInvoiceArgs {
  const stored = assertRerateable(invoice);
  const input: PeriodInvoiceInput = { ...stored, grants, usage: usageOf(rollups) };
  const rated = rate(`invoice ${invoice.id}`, () => ratePeriodInvoice(input));
  return {
    organizationId: invoice.organizationId,
    customerId: invoice.customerId,
    subscriptionId: invoice.subscriptionId,
    kind: 'period',
    billingPeriodId: invoice.billingPeriodId ?? null,
    sourceKey: invoice.sourceKey,
    issueDate: invoice.issueDate,
    rated,
    now,
    draftWindowMinutes,
    sourceOf: (l) => sourceOf(l, sources),
    ratingInput: { ...stored, grants },
    allowance: rated.allowance,
    rollups,
    ledger: rated.allowance_ledger,
    carriedIn: grants,
  };
}

/** A rollup as an invoice's snapshot keeps it. */
function snapshotOf(r: RollupSnapshot): RollupSnapshot {
  return { id: r.id, product_key: r.product_key, price_key: r.price_key, event_count: r.event_count, aggregate: r.aggregate, digest: r.digest };
}

function groupBy<T>(rows: readonly T[], key: (row: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const k = key(row);
    const list = out.get(k);
    if (list) list.push(row);
    else out.set(k, [row]);
  }
  return out;
}

function sourceOf(l: RatedLine, sources: Map<string, LineSource>): LineSource | null {
  return sources.get(l.line_key) ?? null;
}
