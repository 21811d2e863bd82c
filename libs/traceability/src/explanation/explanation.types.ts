/**
 * The explanation document: "what produced this charge?" for one invoice line (SPEC §7).
 * Shape documented field by field in docs/traceability.md. snake_case, money as {amount, currency},
 * decimals as strings, instants ISO 8601 UTC.
 */
import type { ReplayMismatch, Step } from '@closebook/rating';

export interface MoneyJson {
  amount: string;
  currency: string;
}

export interface ExplainedStep extends Step {
  /** 1-based position in the line's steps. */
  number: number;
  /** The step in words, with its numbers ("allowance drawn 4,600 calls (incl. 600 rolled over from 2027-08)"). */
  text: string;
}

export interface PlanRef {
  plan_version_id: string | null;
  plan_key: string;
  version: number | null;
  name: string | null;
}

export interface SegmentJson extends PlanRef {
  from: string;
  to: string;
  days: number;
  days_in_period: number;
  /** "20/30 days". */
  fraction: string;
  seats: number | null;
  transition: string | null;
}

export interface RollupJson {
  rollup_id: string;
  product_key: string;
  price_key: string | null;
  aggregation: string | null;
  meter: { event_name: string | null; filter: Record<string, unknown>; property: string | null; price_key_label: string | null };
  period_start: string | null;
  period_end: string | null;
  /** As rated (invoice_rollups), or null when the line did not rate it (late usage). */
  at_rating: { event_count: string; aggregate: string; digest: string } | null;
  now: { event_count: string; aggregate: string; digest: string; computed_at: string } | null;
  /** Count, aggregate or digest differ between rating and now (events arrived later). */
  changed_since_rating: boolean;
  /** `line` (the line's own rollup) or `late_usage` (the rollup an adjustment line traces back to). */
  via: 'line' | 'late_usage';
}

export interface EventJson {
  event_id: string;
  event_name: string;
  timestamp: string;
  received_at: string;
  properties: Record<string, unknown>;
  rollup_id: string;
  /** Received after the invoice that rated its period was rated (a late event). */
  late: boolean;
}

export interface EventsPage {
  /** Σ event_count of the rollups now: how many events the pages cover without filters. */
  total: string;
  data: EventJson[];
  next_cursor: string | null;
}

export interface LedgerEntryJson {
  id: string;
  date: string;
  key: string;
  source: { type: string; id: string };
  /** Why it is shown: invoice, credit_note, recognition (a deferral schedule of this line), accrual, invoice_line. */
  relation: string;
  description: string;
  reverses_entry_id: string | null;
  corrects_period: string | null;
  lines: { line_no: number; account_code: string; account_name: string; party_id: string | null; debit: MoneyJson; credit: MoneyJson; memo: string | null }[];
}

export interface ExceptionJson {
  id: string;
  type: string | null;
  check_key: string | null;
  item_key: string | null;
  period: string | null;
  status: string | null;
  title: string | null;
  escalated: boolean | null;
  assignee: string | null;
  opened_at: string | null;
  sla_due_at: string | null;
  invoice_id: string | null;
  invoice_line_id: string | null;
  queue: QueueJson | null;
}

export interface QueueJson {
  id: string;
  key: string;
  name: string | null;
  owner: string | null;
  escalation_contact: string | null;
  sla_hours: number | null;
}

export interface LateUsageJson {
  id: string;
  status: string;
  invoice_id: string;
  period_start: string;
  period_end: string;
  product_key: string;
  price_key: string | null;
  rollup_id: string;
  billed_quantity: string;
  previous_quantity: string;
  quantity: string;
  quantity_delta: string;
  amount: MoneyJson;
  event_count: string;
  digest: string;
  detected_at: string;
  /** The re-rating that valued it: the dimension's usage lines at the current and at the previous quantity. */
  rerating: {
    current: { line_key: string; amount: string; steps: ExplainedStep[] }[];
    previous: { line_key: string; amount: string; steps: ExplainedStep[] }[];
    error: { code: string; message: string } | null;
  };
  /** The adjustment that bills it, when one exists: the pending item and the line that billed it. */
  billed_by: { pending_item_id: string; invoice_id: string | null; invoice_line_id: string | null } | null;
}

export interface ExplanationDocument {
  line: {
    id: string;
    position: number;
    line_key: string;
    type: string;
    description: string;
    product_key: string | null;
    price_key: string | null;
    period: { start: string; end: string };
    quantity: string;
    unit: string | null;
    unit_amount: string | null;
    tiers: unknown[] | null;
    amount_exact: string;
    amount: MoneyJson;
    currency: string;
    proration: Record<string, unknown> | null;
    meta: Record<string, unknown>;
  };
  invoice: { id: string; number: string | null; status: string; kind: string; period: { start: string; end: string }; currency: string; total: MoneyJson; finalized_at: string | null };
  customer: { id: string; external_id: string; name: string };
  subscription: {
    id: string;
    status: string;
    started_at: string;
    ends_at: string | null;
    /** The plan version the line was priced by (for usage: the plan in force at the period end). */
    plan: PlanRef | null;
    /** Usage lines and lines of a period with an upgrade or prorated segments: each segment of the line's period with its plan version. */
    segments: SegmentJson[];
  };
  /** The price model snapshot stored on the line. */
  price: unknown;
  steps: ExplainedStep[];
  replay: { matches_stored: boolean; ok: boolean; amount_exact: string | null; amount: string | null; stored_amount: string; mismatches: ReplayMismatch[] };
  /** What the line bills when that is a record of its own (subscription change, on-demand charge, pending item → late usage). */
  source: Record<string, unknown> | null;
  rollups: RollupJson[];
  events: EventsPage;
  ledger: { entries: LedgerEntryJson[]; deferral_schedules: { id: string; key: string; total: MoneyJson; service_start: string; service_end: string }[] };
  credit_notes: { id: string; number: string; reason: string; created_at: string; quantity: string | null; amount: MoneyJson; description: string }[];
  late_usage: LateUsageJson[];
  exceptions: ExceptionJson[];
  disputes: ExceptionJson[];
  /** Whether the exceptions tables exist in this database (the close module creates them). */
  exceptions_available: boolean;
  escalation: (QueueJson & { reason: 'open_dispute' | 'open_exception' | 'disputes_queue' }) | null;
  generated_at: string;
}

export interface EventQuery {
  limit?: number;
  cursor?: string;
  /** Inclusive lower bound on the event timestamp. */
  from?: string;
  /** Exclusive upper bound on the event timestamp. */
  to?: string;
  event_id?: string;
}
