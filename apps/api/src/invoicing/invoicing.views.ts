import { z } from 'zod';
import { decimalString, isoTimestamp, paginationQuery, periodString } from '@closebook/platform';
import {
  INVOICE_KINDS,
  INVOICE_STATUSES,
  LATE_USAGE_STATUSES,
  type BucketReplay,
  type ConversionCohort,
  type CreditNote,
  type CreditNoteLine,
  type Invoice,
  type InvoiceDetail,
  type InvoiceLine,
  type InvoiceRollup,
  type LateUsage,
  type Payment,
  type PendingItem,
  type TransitionPreview,
  type UpcomingInvoice,
} from '@closebook/invoicing';
import { LINE_TYPES, PRORATION_STRATEGIES, type RatedInvoice, type RatedLine, type TaxLine } from '@closebook/rating';
import type { OnDemandCharge } from '@closebook/subscriptions';

const iso = (d: Date) => d.toISOString();
const isoOrNull = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const money = (amount: string, currency: string) => ({ amount, currency });

export const moneyView = z.object({ amount: z.string(), currency: z.string() });
const json = z.unknown();

// ---------------------------------------------------------------------------------------------
// Requests

export const invoiceListQuery = z
  .object({
    ...paginationQuery,
    period: periodString().optional().meta({ description: 'YYYY-MM: invoices whose period starts in that month' }),
    customer: z.string().min(1).max(200).optional().meta({ description: 'Customer id or external id' }),
    status: z.enum(INVOICE_STATUSES).optional(),
    kind: z.enum(INVOICE_KINDS).optional(),
    subscription: z.uuid().optional(),
  })
  .strict();

const positiveDecimal = (maxScale: number) => decimalString({ maxScale });

export const creditNoteBody = z
  .object({
    reason: z.string().trim().min(1).max(1000).meta({ description: 'Why the credit is given (required)' }),
    lines: z
      .array(
        z
          .object({
            invoice_line_id: z.uuid(),
            amount: positiveDecimal(4).optional().meta({ description: 'Amount to credit, in the invoice currency' }),
            quantity: positiveDecimal(12).optional().meta({ description: 'Or a quantity: that share of the line amount' }),
          })
          .strict()
          .superRefine((v, ctx) => {
            if ((v.amount === undefined) === (v.quantity === undefined)) {
              ctx.addIssue({ code: 'custom', path: ['amount'], message: 'give either amount or quantity (exactly one)', input: v.amount });
            }
          }),
      )
      .min(1)
      .max(500),
  })
  .strict();

export const paymentBody = z
  .object({
    invoice_id: z.uuid(),
    amount: positiveDecimal(4).meta({ description: 'Decimal string in the invoice currency, e.g. "124.00"' }),
    currency: z.string().length(3).optional().meta({ description: "Must be the invoice's currency when given" }),
    received_at: isoTimestamp(),
    reference: z.string().trim().min(1).max(200).meta({ description: 'Bank or processor reference; unique per invoice' }),
  })
  .strict();

export const paymentListQuery = z.object({ ...paginationQuery, invoice: z.uuid().optional() }).strict();

export const transitionBody = z
  .object({
    plan_key: z.string().min(1).max(100),
    plan_version: z.number().int().min(1).optional().meta({ description: 'Default: the latest published version' }),
    timing: z.enum(['immediate', 'period_end']).optional().meta({ description: 'Default: upgrades (and lateral moves) immediate, downgrades at period end' }),
    effective_at: isoTimestamp().optional().meta({ description: 'Immediate changes: now (default) or earlier in the current period' }),
    proration_strategy: z.enum(PRORATION_STRATEGIES).optional().meta({ description: "Default: the plan's, else the organization's" }),
  })
  .strict();

export const cancelBody = z.object({ at: z.enum(['period_end', 'immediately']) }).strict();

export const chargeBody = z
  .object({
    description: z.string().trim().min(1).max(500),
    quantity: positiveDecimal(12),
    unit_amount: positiveDecimal(12).meta({ description: "Decimal string in the subscription's currency" }),
    date: isoTimestamp().optional().meta({ description: 'When the service was delivered; default now' }),
    product_key: z.string().min(1).max(100).optional().meta({ description: 'A one_time product of the catalog' }),
  })
  .strict();

export const ledgerQuery = z
  .object({ product: z.string().min(1).max(100).optional(), price_key: z.string().max(200).optional().meta({ description: "'' for unkeyed dimensions" }) })
  .strict();

export const conversionsQuery = z.object({ from: periodString().optional(), to: periodString().optional() }).strict();

export const lateUsageQuery = z
  .object({ ...paginationQuery, status: z.enum(LATE_USAGE_STATUSES).optional(), invoice: z.uuid().optional(), subscription: z.uuid().optional() })
  .strict();

// ---------------------------------------------------------------------------------------------
// Invoices

const rollupRef = z.object({ rollup_id: z.string(), product_key: z.string(), price_key: z.string().nullable(), event_count: z.string(), aggregate: z.string(), digest: z.string() });

export const lineView = z.object({
  id: z.string(),
  position: z.number(),
  line_key: z.string(),
  type: z.enum(LINE_TYPES),
  product_key: z.string().nullable(),
  price_key: z.string().nullable(),
  period_start: z.string(),
  period_end: z.string(),
  quantity: z.string(),
  unit_amount: z.string().nullable(),
  tiers: json.nullable(),
  price: json.nullable(),
  amount: moneyView,
  amount_exact: z.string(),
  description: z.string(),
  proration: json.nullable(),
  steps: z.array(json),
  meta: z.record(z.string(), json),
  source: z.object({ type: z.string(), id: z.string() }).nullable(),
  rollups: z.array(rollupRef).meta({ description: 'Usage lines: the rollups rated, with their count, aggregate and digest at rating time' }),
});

const taxLineView = z.object({ rate: z.string(), taxable_amount: moneyView, amount: moneyView, amount_exact: z.string(), description: z.string(), steps: z.array(json) });

export const invoiceSummaryView = z.object({
  id: z.string(),
  number: z.string().nullable(),
  kind: z.enum(INVOICE_KINDS),
  status: z.enum(INVOICE_STATUSES),
  customer_id: z.string(),
  subscription_id: z.string(),
  billing_period_id: z.string().nullable(),
  period_start: z.string(),
  period_end: z.string(),
  issue_date: z.string().meta({
    description: 'The accounting date (YYYY-MM-DD) the invoice posts on: a period invoice on its period’s last day, an opening invoice on its subscription’s start day, a transition invoice on the change’s effective day',
  }),
  currency: z.string(),
  subtotal: moneyView,
  tax: moneyView,
  total: moneyView,
  finalize_after: z.string(),
  finalized_at: z.string().nullable(),
  due_at: z.string().nullable(),
  paid_at: z.string().nullable(),
  voided_at: z.string().nullable(),
  content_hash: z.string(),
  rated_at: z.string(),
  rating_count: z.number(),
  created_at: z.string(),
});

const creditNoteLineView = z.object({ id: z.string(), invoice_line_id: z.string(), quantity: z.string().nullable(), amount: moneyView, description: z.string() });
export const creditNoteView = z.object({
  id: z.string(),
  number: z.string(),
  invoice_id: z.string(),
  customer_id: z.string(),
  reason: z.string(),
  subtotal: moneyView,
  tax: moneyView,
  total: moneyView,
  lines: z.array(creditNoteLineView),
  created_at: z.string(),
});
export const paymentView = z.object({
  id: z.string(),
  invoice_id: z.string(),
  customer_id: z.string(),
  amount: moneyView,
  received_at: z.string(),
  reference: z.string(),
  created_at: z.string(),
});

export const invoiceView = invoiceSummaryView.extend({
  tax_line: taxLineView.nullable(),
  lines: z.array(lineView),
  allowance: z.array(json).nullable().meta({ description: 'Period invoices: the allowance state of every dimension at rating' }),
  amount_credited: moneyView,
  amount_paid: moneyView,
  amount_due: moneyView,
  credit_notes: z.array(creditNoteView.omit({ lines: true })),
  payments: z.array(paymentView),
});

export const finalizeManyBody = z
  .object({
    through: isoTimestamp().optional().meta({ description: 'Finalize drafts whose period ends at or before this instant (default: now)' }),
    limit: z.number().int().min(1).max(1000).optional().meta({ description: 'At most this many drafts in this call (default 500); call again while `remaining` drops' }),
  })
  .strict();

export const finalizeManyView = z.object({
  finalized: z.number().int(),
  unchanged: z.number().int().meta({ description: 'Drafts finalized meanwhile by another caller (one transition each)' }),
  failed: z.array(z.object({ invoice_id: z.string(), code: z.string(), message: z.string() })).meta({
    description: "Drafts left as drafts and why; the subscription's later drafts wait for the next call",
  }),
  remaining: z.number().int().meta({ description: 'Drafts through the instant still not finalized after this call' }),
});

export const finalizeView = invoiceView.extend({ transitioned: z.boolean().meta({ description: 'False when it was already finalized (one transition)' }) });
export const paymentResultView = z.object({ payment: paymentView, invoice: invoiceSummaryView });

export function presentInvoiceSummary(i: Invoice): z.infer<typeof invoiceSummaryView> {
  return {
    id: i.id,
    number: i.number ?? null,
    kind: i.kind,
    status: i.status,
    customer_id: i.customerId,
    subscription_id: i.subscriptionId,
    billing_period_id: i.billingPeriodId ?? null,
    period_start: iso(i.periodStart),
    period_end: iso(i.periodEnd),
    issue_date: i.issueDate,
    currency: i.currency,
    subtotal: money(i.subtotal, i.currency),
    tax: money(i.taxAmount, i.currency),
    total: money(i.total, i.currency),
    finalize_after: iso(i.finalizeAfter),
    finalized_at: isoOrNull(i.finalizedAt),
    due_at: isoOrNull(i.dueAt),
    paid_at: isoOrNull(i.paidAt),
    voided_at: isoOrNull(i.voidedAt),
    content_hash: i.contentHash,
    rated_at: iso(i.ratedAt),
    rating_count: i.ratingCount,
    created_at: iso(i.createdAt),
  };
}

function presentTax(t: TaxLine | null | undefined): z.infer<typeof taxLineView> | null {
  if (!t) return null;
  return { rate: t.rate, taxable_amount: money(t.taxable_amount, t.currency), amount: money(t.amount, t.currency), amount_exact: t.amount_exact, description: t.description, steps: t.steps };
}

export function presentLine(l: InvoiceLine, rollups: InvoiceRollup[]): z.infer<typeof lineView> {
  return {
    id: l.id,
    position: l.position,
    line_key: l.lineKey,
    type: l.type,
    product_key: l.productKey ?? null,
    price_key: l.priceKey ?? null,
    period_start: iso(l.periodStart),
    period_end: iso(l.periodEnd),
    quantity: l.quantity,
    unit_amount: l.unitAmount ?? null,
    tiers: l.tiers ?? null,
    price: l.price ?? null,
    amount: money(l.amount, l.currency),
    amount_exact: l.amountExact,
    description: l.description,
    proration: l.proration ?? null,
    steps: l.steps,
    meta: l.meta,
    source: l.sourceType && l.sourceId ? { type: l.sourceType, id: l.sourceId } : null,
    rollups: rollups
      .filter((r) => r.invoiceLineId === l.id)
      .map((r) => ({ rollup_id: r.rollupId, product_key: r.productKey, price_key: r.priceKey === '' ? null : r.priceKey, event_count: r.eventCount, aggregate: r.aggregate, digest: r.digest })),
  };
}

const creditNoteSummaryView = creditNoteView.omit({ lines: true });

export function presentCreditNoteSummary(n: CreditNote): z.infer<typeof creditNoteSummaryView> {
  return {
    id: n.id,
    number: n.number,
    invoice_id: n.invoiceId,
    customer_id: n.customerId,
    reason: n.reason,
    subtotal: money(n.subtotal, n.currency),
    tax: money(n.taxAmount, n.currency),
    total: money(n.total, n.currency),
    created_at: iso(n.createdAt),
  };
}

export function presentCreditNote(n: CreditNote, lines: CreditNoteLine[]): z.infer<typeof creditNoteView> {
  return {
    ...presentCreditNoteSummary(n),
    lines: lines.map((l) => ({ id: l.id, invoice_line_id: l.invoiceLineId, quantity: l.quantity ?? null, amount: money(l.amount, n.currency), description: l.description })),
  };
}

export function presentPayment(p: Payment): z.infer<typeof paymentView> {
  return { id: p.id, invoice_id: p.invoiceId, customer_id: p.customerId, amount: money(p.amount, p.currency), received_at: iso(p.receivedAt), reference: p.reference, created_at: iso(p.createdAt) };
}

export function presentInvoice(d: InvoiceDetail): z.infer<typeof invoiceView> {
  const i = d.invoice;
  return {
    ...presentInvoiceSummary(i),
    tax_line: presentTax(i.taxLine),
    lines: d.lines.map((l) => presentLine(l, d.rollups)),
    allowance: i.allowance ?? null,
    amount_credited: money(d.balance.credited, i.currency),
    amount_paid: money(d.balance.paid, i.currency),
    amount_due: money(d.balance.due, i.currency),
    credit_notes: d.creditNotes.map(presentCreditNoteSummary),
    payments: d.payments.map(presentPayment),
  };
}

// ---------------------------------------------------------------------------------------------
// Rated (unwritten) invoices: previews and the upcoming invoice

export const ratedLineView = lineView.omit({ id: true, position: true, source: true, rollups: true });
export const ratedInvoiceView = z.object({
  kind: z.enum(INVOICE_KINDS),
  currency: z.string(),
  period_start: z.string(),
  period_end: z.string(),
  lines: z.array(ratedLineView),
  subtotal: moneyView,
  tax_line: taxLineView.nullable(),
  tax: moneyView,
  total: moneyView,
});

export function presentRatedLine(l: RatedLine): z.infer<typeof ratedLineView> {
  return {
    line_key: l.line_key,
    type: l.type,
    product_key: l.product_key,
    price_key: l.price_key,
    period_start: l.period_start,
    period_end: l.period_end,
    quantity: l.quantity,
    unit_amount: l.unit_amount,
    tiers: l.tiers,
    price: l.price,
    amount: money(l.amount, l.currency),
    amount_exact: l.amount_exact,
    description: l.description,
    proration: l.proration,
    steps: l.steps,
    meta: l.meta,
  };
}

export function presentRated(r: RatedInvoice): z.infer<typeof ratedInvoiceView> {
  const zero = r.subtotal.includes('.') ? `0.${'0'.repeat(r.subtotal.split('.')[1].length)}` : '0';
  return {
    kind: r.kind,
    currency: r.currency,
    period_start: r.period_start,
    period_end: r.period_end,
    lines: r.lines.map(presentRatedLine),
    subtotal: money(r.subtotal, r.currency),
    tax_line: presentTax(r.tax),
    tax: money(r.tax?.amount ?? zero, r.currency),
    total: money(r.total, r.currency),
  };
}

export const upcomingView = z.object({
  subscription_id: z.string(),
  period: z.object({ start: z.string(), end: z.string() }),
  as_of: z.string(),
  estimate: z.literal(true),
  invoice: ratedInvoiceView,
  allowance: z.array(json),
});

export function presentUpcoming(u: UpcomingInvoice): z.infer<typeof upcomingView> {
  return { subscription_id: u.subscription_id, period: u.period, as_of: u.as_of, estimate: true, invoice: presentRated(u.invoice), allowance: u.invoice.allowance };
}

// ---------------------------------------------------------------------------------------------
// Transitions, cancellation, charges

const planRef = z.object({ plan_key: z.string(), version: z.number(), plan_version_id: z.string() });

export const transitionPreviewView = z.object({
  subscription_id: z.string(),
  from: planRef,
  to: planRef,
  direction: z.enum(['upgrade', 'downgrade', 'lateral']),
  timing: z.enum(['immediate', 'period_end']),
  effective_at: z.string(),
  conversion: z.boolean(),
  dropped_addons: z.array(z.string()),
  proration_strategy: z.enum(PRORATION_STRATEGIES),
  applied_strategy: z.enum(PRORATION_STRATEGIES).nullable(),
  proration: z.string().nullable(),
  covered_by_period_invoice: z.boolean().meta({ description: 'True when the next period invoice bills the new terms in advance (nothing to prorate)' }),
  immediate_invoice: ratedInvoiceView.nullable(),
  deferred_lines: z.array(ratedLineView),
});

export function presentPreview(p: TransitionPreview): z.infer<typeof transitionPreviewView> {
  const d = p.decision;
  return {
    subscription_id: d.subscription.id,
    from: { plan_key: d.from.plan.plan_key, version: d.from.plan.version, plan_version_id: d.from.planVersionId },
    to: { plan_key: d.to.plan.plan_key, version: d.to.plan.version, plan_version_id: d.to.planVersionId },
    direction: d.direction,
    timing: d.timing,
    effective_at: iso(d.effectiveAt),
    conversion: d.conversion,
    dropped_addons: d.droppedAddons,
    proration_strategy: p.strategy,
    applied_strategy: p.appliedStrategy,
    proration: p.proration,
    covered_by_period_invoice: p.coveredByPeriodInvoice,
    immediate_invoice: p.immediate ? presentRated(p.immediate) : null,
    deferred_lines: p.deferredLines.map(presentRatedLine),
  };
}

export const pendingItemView = z.object({
  id: z.string(),
  kind: z.string(),
  description: z.string(),
  billable_from: z.string(),
  line: ratedLineView.nullable(),
});

export function presentPending(p: PendingItem): z.infer<typeof pendingItemView> {
  return {
    id: p.id,
    kind: p.kind,
    description: p.description,
    billable_from: iso(p.billableFrom),
    line: p.kind === 'deferred_line' ? presentRatedLine(p.payload as RatedLine) : null,
  };
}

export const chargeView = z.object({
  id: z.string(),
  subscription_id: z.string(),
  description: z.string(),
  quantity: z.string(),
  unit_amount: z.string(),
  date: z.string(),
  product_key: z.string().nullable(),
  created_at: z.string(),
});

export function presentCharge(c: OnDemandCharge): z.infer<typeof chargeView> {
  return {
    id: c.id,
    subscription_id: c.subscriptionId,
    description: c.description,
    quantity: c.quantity,
    unit_amount: c.unitAmount,
    date: iso(c.date),
    product_key: c.productKey ?? null,
    created_at: iso(c.createdAt),
  };
}

// ---------------------------------------------------------------------------------------------
// Allowance ledger, analytics, late usage

export const bucketView = z.object({
  grant_id: z.string(),
  kind: z.enum(['period', 'rollover']),
  product_key: z.string(),
  price_key: z.string().nullable(),
  quantity: z.string(),
  granted_in_period: z.string(),
  expires_after_period: z.string(),
  carried_from_period: z.string().nullable(),
  invoice_id: z.string(),
  invoice_status: z.string(),
  drawdowns: z.array(z.object({ period_start: z.string(), drawn: z.string(), invoice_id: z.string() })),
  expiry: z.object({ period_start: z.string(), unused: z.string(), carried: z.string(), expired: z.string(), carried_to: z.string().nullable() }).nullable(),
  drawn: z.string(),
  remaining: z.string(),
  lapsed: z.boolean(),
  balanced: z.boolean(),
});

export function presentBucket(b: BucketReplay): z.infer<typeof bucketView> {
  const g = b.grant;
  return {
    grant_id: g.grantId,
    kind: g.kind,
    product_key: g.productKey,
    price_key: g.priceKey ?? null,
    quantity: g.quantity,
    granted_in_period: iso(g.grantedInPeriod),
    expires_after_period: iso(g.expiresAfterPeriod),
    carried_from_period: isoOrNull(g.carriedFromPeriod),
    invoice_id: g.invoiceId,
    invoice_status: b.invoice_status,
    drawdowns: b.drawdowns.map((d) => ({ period_start: iso(d.periodStart), drawn: d.drawn, invoice_id: d.invoiceId })),
    expiry: b.expiry ? { period_start: iso(b.expiry.periodStart), unused: b.expiry.unused, carried: b.expiry.carried, expired: b.expiry.expired, carried_to: b.expiry.carriedTo ?? null } : null,
    drawn: b.drawn,
    remaining: b.remaining,
    lapsed: b.lapsed,
    balanced: b.balanced,
  };
}

export const conversionCohortView = z.object({
  cohort_month: z.string(),
  subscriptions_started: z.number(),
  conversions: z.number(),
  conversion_rate: z.string().nullable(),
  avg_days_to_convert: z.string().nullable(),
  median_days_to_convert: z.string().nullable(),
});
export const presentCohort = (c: ConversionCohort): z.infer<typeof conversionCohortView> => c;

export const lateUsageView = z.object({
  id: z.string(),
  subscription_id: z.string(),
  customer_id: z.string(),
  invoice_id: z.string(),
  period_start: z.string(),
  period_end: z.string(),
  product_key: z.string(),
  price_key: z.string().nullable(),
  rollup_id: z.string(),
  billed_quantity: z.string(),
  previous_quantity: z.string(),
  quantity: z.string(),
  quantity_delta: z.string(),
  amount: moneyView.meta({ description: 'What it would have billed (re-rated with the invoice’s own inputs)' }),
  event_count: z.string(),
  digest: z.string(),
  steps: json,
  status: z.enum(LATE_USAGE_STATUSES),
  created_at: z.string(),
});

export function presentLateUsage(l: LateUsage): z.infer<typeof lateUsageView> {
  return {
    id: l.id,
    subscription_id: l.subscriptionId,
    customer_id: l.customerId,
    invoice_id: l.invoiceId,
    period_start: iso(l.periodStart),
    period_end: iso(l.periodEnd),
    product_key: l.productKey,
    price_key: l.priceKey === '' ? null : l.priceKey,
    rollup_id: l.rollupId,
    billed_quantity: l.billedQuantity,
    previous_quantity: l.previousQuantity,
    quantity: l.quantity,
    quantity_delta: l.quantityDelta,
    amount: money(l.amount, l.currency),
    event_count: l.eventCount,
    digest: l.digest,
    steps: l.steps,
    status: l.status,
    created_at: iso(l.createdAt),
  };
}
