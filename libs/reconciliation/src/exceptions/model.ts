/**
 * The vocabulary of exceptions and their queues (SPEC §6): types, statuses, resolution kinds,
 * evidence kinds, the default queues and the routing of each type to its queue. Pure data.
 */
export const EXCEPTION_TYPES = [
  'usage_integrity',
  'billing_variance',
  'ledger_posting',
  'completeness',
  'deferred_revenue',
  'flux',
  'late_usage',
  'dispute',
  'summary',
] as const;
export type ExceptionType = (typeof EXCEPTION_TYPES)[number];

export const EXCEPTION_STATUSES = ['open', 'assigned', 'resolved', 'waived'] as const;
export type ExceptionStatus = (typeof EXCEPTION_STATUSES)[number];
/** The statuses that block the close of the exception's period. */
export const ACTIVE_STATUSES: readonly ExceptionStatus[] = ['open', 'assigned'];

export const RESOLUTION_KINDS = ['auto', 'corrected', 'accepted'] as const;
export type ResolutionKind = (typeof RESOLUTION_KINDS)[number];

export const REVIEW_CADENCES = ['daily', 'weekly', 'biweekly', 'monthly'] as const;
export type ReviewCadence = (typeof REVIEW_CADENCES)[number];

/**
 * What a resolution may have to show:
 * - `note`: a written explanation (the `note` of the resolution);
 * - `credit_note`: `evidence.credit_note_id`, a credit note of the organization (`credit_notes`);
 * - `invoice`: `evidence.invoice_id`, an invoice of the organization that bills the correction;
 * - `ledger_entry`: `evidence.ledger_entry_id`, a posted journal entry (`journal_entries`);
 * - `adjustment`: `evidence.adjustment_id`, an adjustment waiting for (or billed on) the next
 *   period invoice (`invoice_pending_items`).
 */
export const EVIDENCE_KINDS = ['note', 'credit_note', 'invoice', 'ledger_entry', 'adjustment'] as const;
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];
/** A queue's requirement: one kind, or a list of kinds of which at least one must be shown. */
export type EvidenceRequirement = EvidenceKind | EvidenceKind[];

/** The documents a resolution can point to (ids in the organization). */
export interface Evidence {
  credit_note_id?: string;
  invoice_id?: string;
  ledger_entry_id?: string;
  adjustment_id?: string;
}

export const EVIDENCE_FIELDS: Record<Exclude<EvidenceKind, 'note'>, { field: keyof Evidence; table: string }> = {
  credit_note: { field: 'credit_note_id', table: 'credit_notes' },
  invoice: { field: 'invoice_id', table: 'invoices' },
  ledger_entry: { field: 'ledger_entry_id', table: 'journal_entries' },
  adjustment: { field: 'adjustment_id', table: 'invoice_pending_items' },
};

export interface QueueDefinition {
  key: string;
  name: string;
  owner: string;
  escalationContact: string;
  reviewCadence: ReviewCadence;
  slaHours: number;
  requiredEvidence: EvidenceRequirement[];
  exceptionTypes: ExceptionType[];
}

/**
 * The queues every organization gets (created lazily, idempotently). Document requirements apply to
 * `corrected` resolutions; `accepted` ones need the note only (docs/exceptions.md).
 */
export const DEFAULT_QUEUES: QueueDefinition[] = [
  {
    key: 'usage-integrity',
    name: 'Usage integrity (events → rollups)',
    owner: 'finance',
    escalationContact: 'controller',
    reviewCadence: 'daily',
    slaHours: 24,
    requiredEvidence: ['note'],
    exceptionTypes: ['usage_integrity'],
  },
  {
    key: 'billing-variance',
    name: 'Billing variances and completeness',
    owner: 'finance',
    escalationContact: 'controller',
    reviewCadence: 'daily',
    slaHours: 48,
    requiredEvidence: ['note', ['credit_note', 'invoice', 'adjustment']],
    exceptionTypes: ['billing_variance', 'completeness'],
  },
  {
    key: 'ledger-posting',
    name: 'Ledger posting and deferred revenue',
    owner: 'finance',
    escalationContact: 'controller',
    reviewCadence: 'daily',
    slaHours: 24,
    requiredEvidence: ['note', 'ledger_entry'],
    exceptionTypes: ['ledger_posting', 'deferred_revenue'],
  },
  {
    key: 'late-usage',
    name: 'Late usage (after the invoice was finalized)',
    owner: 'finance',
    escalationContact: 'controller',
    reviewCadence: 'weekly',
    slaHours: 72,
    requiredEvidence: ['note'],
    exceptionTypes: ['late_usage'],
  },
  {
    key: 'flux-review',
    name: 'Flux review (month over month)',
    owner: 'finance',
    escalationContact: 'controller',
    reviewCadence: 'weekly',
    slaHours: 120,
    requiredEvidence: ['note'],
    exceptionTypes: ['flux'],
  },
  {
    key: 'disputes',
    name: 'Customer disputes',
    owner: 'finance',
    escalationContact: 'support-lead',
    reviewCadence: 'daily',
    slaHours: 48,
    requiredEvidence: ['note'],
    exceptionTypes: ['dispute'],
  },
];

/** Where a type goes when no queue of the organization lists it (its default queue). */
export const DEFAULT_ROUTING: Record<Exclude<ExceptionType, 'summary'>, string> = {
  usage_integrity: 'usage-integrity',
  billing_variance: 'billing-variance',
  completeness: 'billing-variance',
  ledger_posting: 'ledger-posting',
  deferred_revenue: 'ledger-posting',
  flux: 'flux-review',
  late_usage: 'late-usage',
  dispute: 'disputes',
};

/** The item key of a check's summary exception (a run over the cap). */
export const SUMMARY_ITEM_KEY = 'summary';
/** Default cap of new exceptions one run of one check may open (SPEC §6: 500). */
export const DEFAULT_EXCEPTION_CAP = 500;
/** How many items a summary exception lists. */
export const SUMMARY_SAMPLE = 50;

export const PERIOD_RE = /^\d{4}-(0[1-9]|1[0-2])$/;
