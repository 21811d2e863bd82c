import { z } from 'zod';
import { isoTimestamp } from '@closebook/platform';
import { EVENTS_DEFAULT_LIMIT, EVENTS_MAX_LIMIT } from '@closebook/traceability';
import { lateUsageView } from '../invoicing/invoicing.views';

// ---------------------------------------------------------------------------------------------
// Requests

const eventsLimit = z.coerce.number().int().min(1).max(EVENTS_MAX_LIMIT).default(EVENTS_DEFAULT_LIMIT);
const eventId = z.string().min(1).max(200);

export const explanationQuery = z
  .object({
    events_limit: eventsLimit.meta({ description: `Events per page (1..${EVENTS_MAX_LIMIT}, default ${EVENTS_DEFAULT_LIMIT})` }),
    events_cursor: z.string().max(500).optional().meta({ description: "The events page's next_cursor" }),
    events_from: isoTimestamp().optional().meta({ description: 'Only events at or after this instant' }),
    events_to: isoTimestamp().optional().meta({ description: 'Only events before this instant' }),
    events_event_id: eventId.optional().meta({ description: 'Only the event with this event_id' }),
  })
  .strict();

export const lineEventsQuery = z
  .object({
    limit: eventsLimit,
    cursor: z.string().max(500).optional(),
    from: isoTimestamp().optional().meta({ description: 'Only events at or after this instant' }),
    to: isoTimestamp().optional().meta({ description: 'Only events before this instant' }),
    event_id: eventId.optional(),
  })
  .strict();

// ---------------------------------------------------------------------------------------------
// Responses (documentation: docs/traceability.md)

const moneyView = z.object({ amount: z.string(), currency: z.string() });
const json = z.unknown();
const period = z.object({ start: z.string(), end: z.string() });

const stepView = z.object({
  number: z.number(),
  op: z.string(),
  name: z.string().optional(),
  inputs: z.record(z.string(), z.string().nullable()),
  refs: z.record(z.string(), z.string()).optional(),
  result: z.string(),
  note: z.string(),
  text: z.string().meta({ description: 'The step in words with its numbers' }),
});

const planRef = z.object({ plan_version_id: z.string().nullable(), plan_key: z.string(), version: z.number().nullable(), name: z.string().nullable() });
const segmentView = planRef.extend({
  from: z.string(),
  to: z.string(),
  days: z.number(),
  days_in_period: z.number(),
  fraction: z.string().meta({ description: 'e.g. "10/30 days"' }),
  seats: z.number().nullable(),
  transition: z.string().nullable(),
});
const rollupFigures = z.object({ event_count: z.string(), aggregate: z.string(), digest: z.string() });
const rollupView = z.object({
  rollup_id: z.string(),
  product_key: z.string(),
  price_key: z.string().nullable(),
  aggregation: z.string().nullable(),
  meter: z.object({ event_name: z.string().nullable(), filter: z.record(z.string(), json), property: z.string().nullable(), price_key_label: z.string().nullable() }),
  period_start: z.string().nullable(),
  period_end: z.string().nullable(),
  at_rating: rollupFigures.nullable(),
  now: rollupFigures.extend({ computed_at: z.string() }).nullable(),
  changed_since_rating: z.boolean(),
  via: z.enum(['line', 'late_usage']),
});
const eventView = z.object({
  event_id: z.string(),
  event_name: z.string(),
  timestamp: z.string(),
  received_at: z.string(),
  properties: z.record(z.string(), json),
  rollup_id: z.string(),
  late: z.boolean(),
});
export const eventsPageView = z.object({ total: z.string(), data: z.array(eventView), next_cursor: z.string().nullable() });
const queueView = z.object({ id: z.string(), key: z.string(), name: z.string().nullable(), owner: z.string().nullable(), escalation_contact: z.string().nullable(), sla_hours: z.number().nullable() });
const exceptionView = z.object({
  id: z.string(),
  type: z.string().nullable(),
  check_key: z.string().nullable(),
  item_key: z.string().nullable(),
  period: z.string().nullable(),
  status: z.string().nullable(),
  title: z.string().nullable(),
  escalated: z.boolean().nullable(),
  assignee: z.string().nullable(),
  opened_at: z.string().nullable(),
  sla_due_at: z.string().nullable(),
  invoice_id: z.string().nullable(),
  invoice_line_id: z.string().nullable(),
  queue: queueView.nullable(),
});
const reratedLine = z.object({ line_key: z.string(), amount: z.string(), steps: z.array(stepView) });

export const explanationView = z.object({
  line: z.object({
    id: z.string(),
    position: z.number(),
    line_key: z.string(),
    type: z.string(),
    description: z.string(),
    product_key: z.string().nullable(),
    price_key: z.string().nullable(),
    period,
    quantity: z.string(),
    unit: z.string().nullable(),
    unit_amount: z.string().nullable(),
    tiers: z.array(json).nullable(),
    amount_exact: z.string(),
    amount: moneyView,
    currency: z.string(),
    proration: json.nullable(),
    meta: z.record(z.string(), json),
  }),
  invoice: z.object({ id: z.string(), number: z.string().nullable(), status: z.string(), kind: z.string(), period, currency: z.string(), total: moneyView, finalized_at: z.string().nullable() }),
  customer: z.object({ id: z.string(), external_id: z.string(), name: z.string() }),
  subscription: z.object({
    id: z.string(),
    status: z.string(),
    started_at: z.string(),
    ends_at: z.string().nullable(),
    plan: planRef.nullable().meta({ description: 'The plan version that priced the line (usage: the plan in force at the period end)' }),
    segments: z.array(segmentView),
  }),
  price: json.nullable().meta({ description: 'The price model snapshot stored on the line' }),
  steps: z.array(stepView),
  replay: z.object({
    matches_stored: z.boolean(),
    ok: z.boolean(),
    amount_exact: z.string().nullable(),
    amount: z.string().nullable(),
    stored_amount: z.string(),
    mismatches: z.array(json),
  }),
  source: z.record(z.string(), json).nullable(),
  rollups: z.array(rollupView),
  events: eventsPageView,
  ledger: z.object({
    entries: z.array(
      z.object({
        id: z.string(),
        date: z.string(),
        key: z.string(),
        source: z.object({ type: z.string(), id: z.string() }),
        relation: z.string(),
        description: z.string(),
        reverses_entry_id: z.string().nullable(),
        corrects_period: z.string().nullable(),
        lines: z.array(
          z.object({ line_no: z.number(), account_code: z.string(), account_name: z.string(), party_id: z.string().nullable(), debit: moneyView, credit: moneyView, memo: z.string().nullable() }),
        ),
      }),
    ),
    deferral_schedules: z.array(z.object({ id: z.string(), key: z.string(), total: moneyView, service_start: z.string(), service_end: z.string() })),
  }),
  credit_notes: z.array(
    z.object({ id: z.string(), number: z.string(), reason: z.string(), created_at: z.string(), quantity: z.string().nullable(), amount: moneyView, description: z.string() }),
  ),
  late_usage: z.array(
    // The late usage as GET /v1/late-usage shows it, plus how it was re-rated and what billed it.
    lateUsageView
      .pick({
        id: true,
        status: true,
        invoice_id: true,
        period_start: true,
        period_end: true,
        product_key: true,
        price_key: true,
        rollup_id: true,
        billed_quantity: true,
        previous_quantity: true,
        quantity: true,
        quantity_delta: true,
        amount: true,
        event_count: true,
        digest: true,
      })
      .extend({
      detected_at: z.string(),
      rerating: z.object({ current: z.array(reratedLine), previous: z.array(reratedLine), error: z.object({ code: z.string(), message: z.string() }).nullable() }),
      billed_by: z.object({ pending_item_id: z.string(), invoice_id: z.string().nullable(), invoice_line_id: z.string().nullable() }).nullable(),
      }),
  ),
  exceptions: z.array(exceptionView),
  disputes: z.array(exceptionView),
  exceptions_available: z.boolean(),
  escalation: queueView.extend({ reason: z.enum(['open_dispute', 'open_exception', 'disputes_queue']) }).nullable(),
  generated_at: z.string(),
});
