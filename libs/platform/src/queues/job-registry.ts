import { z } from 'zod';

/**
 * Every queue and every job Closebook runs, with the payload each job carries. Payloads carry ids,
 * never state. The worker refuses to start unless each job name here has exactly one handler.
 */
export const QUEUE_NAMES = ['platform', 'metering', 'billing', 'ledger', 'reconciliation', 'exports', 'webhooks'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

const uuid = z.uuid();
const period = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/);

export const JOBS = {
  'platform.purge-idempotency-keys': { queue: 'platform', payload: z.object({}).strict() },
  'metering.rollup': { queue: 'metering', payload: z.object({ organization_id: uuid }).strict() },
  'metering.sweep': { queue: 'metering', payload: z.object({}).strict() },
  'metering.attribution-sweep': { queue: 'metering', payload: z.object({}).strict() },
  'ledger.recognize-revenue': { queue: 'ledger', payload: z.object({ organization_id: uuid, period }).strict() },
  'subscriptions.extend-periods': { queue: 'billing', payload: z.object({}).strict() },
  'subscriptions.apply-due-changes': { queue: 'billing', payload: z.object({}).strict() },
  // Invoicing (libs/billing/invoicing): period-end flows (parent rate-period, children rate-batch), draft windows, late usage.
  'invoicing.period-end': { queue: 'billing', payload: z.object({ organization_id: uuid.optional() }).strict() },
  'invoicing.rate-period': { queue: 'billing', payload: z.object({ organization_id: uuid, period_end: z.iso.date() }).strict() },
  'invoicing.rate-batch': { queue: 'billing', payload: z.object({ organization_id: uuid, period_end: z.iso.date(), billing_period_ids: z.array(uuid).min(1).max(1000) }).strict() },
  'invoicing.finalize-due': { queue: 'billing', payload: z.object({}).strict() },
  'invoicing.watch-usage': { queue: 'billing', payload: z.object({ organization_id: uuid.optional() }).strict() },
  'invoicing.accrue-usage': { queue: 'billing', payload: z.object({ organization_id: uuid, period }).strict() },
  'exports.audit-workbook': { queue: 'exports', payload: z.object({ organization_id: uuid, export_id: uuid }).strict() },
  'reconciliation.escalate-exceptions': { queue: 'reconciliation', payload: z.object({}).strict() },
  // Reconciliation runs (libs/reconciliation/src/runs): parent run, one child per check; ids recon-{run}[-{check}].
  'reconciliation.run': { queue: 'reconciliation', payload: z.object({ organization_id: uuid, run_id: uuid }).strict() },
  'reconciliation.check': { queue: 'reconciliation', payload: z.object({ organization_id: uuid, run_id: uuid, check: z.enum(['events_rollups', 'rollups_lines', 'invoices_ledger', 'completeness', 'deferred_revenue', 'flux']) }).strict() },
  'webhooks.dispatch-outbox': { queue: 'webhooks', payload: z.object({}).strict() },
  'webhooks.deliver': { queue: 'webhooks', payload: z.object({ deliveryId: uuid }).strict() },
} as const satisfies Record<string, { queue: QueueName; payload: z.ZodType }>;

export type JobName = keyof typeof JOBS;
export type JobPayload<N extends JobName> = z.infer<(typeof JOBS)[N]['payload']>;

export const jobNames = (): JobName[] => Object.keys(JOBS) as JobName[];

/** Keep the helpers in scope for the registry entries added by billing, ledger and close modules. */
export const payloadParts = { uuid, period };
