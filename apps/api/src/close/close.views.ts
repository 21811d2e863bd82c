import { z } from 'zod';
import type { CloseSignOff, CloseStatus, MonthEndResult, RequiredSignOff } from '@closebook/reconciliation';

export const signOffBody = z
  .object({
    step: z.string().min(1).max(100).meta({ description: 'The sign-off step, one of the organization’s required steps (default: preparer, reviewer)' }),
    note: z.string().max(2000).optional(),
  })
  .strict();

export const closeBody = z.object({}).strict();

export const settingsBody = z
  .object({
    required_sign_offs: z
      .array(z.object({ step: z.string().min(1).max(100), roles: z.array(z.enum(['finance', 'support', 'auditor'])).max(3) }).strict())
      .max(10),
  })
  .strict();

export const signOffView = z.object({
  id: z.string(),
  period: z.string(),
  step: z.string(),
  signer: z.string(),
  signer_role: z.string(),
  note: z.string().nullable(),
  signed_at: z.string(),
  runs: z.record(z.string(), z.string()),
  withdrawn_at: z.string().nullable(),
  withdrawn_reason: z.string().nullable(),
});

export const blockerView = z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() });

export const closeStatusView = z.object({
  period: z.string(),
  ledger_status: z.enum(['open', 'closing', 'closed']),
  closable: z.boolean(),
  blockers: z.array(blockerView).meta({ description: 'Exactly what blocks the close; empty when it can close' }),
  checks: z.array(z.object({ check: z.string(), status: z.string().nullable(), run_id: z.string().nullable(), finished_at: z.string().nullable(), fresh: z.boolean(), failed: z.number() })),
  exceptions: z.object({
    open: z.number(),
    assigned: z.number(),
    escalated: z.number(),
    queues: z.array(z.object({ key: z.string(), owner: z.string(), escalation_contact: z.string(), count: z.number() })),
  }),
  sign_offs: z.object({
    required: z.array(z.object({ step: z.string(), roles: z.array(z.string()) })),
    given: z.array(signOffView),
    withdrawn_now: z.array(signOffView),
  }),
});

export const closeResultView = closeStatusView.extend({ transitioned: z.boolean(), closed_at: z.string().nullable() });

export const monthEndView = z.object({
  period: z.string(),
  rollups: z.object({ processed: z.number(), remaining: z.boolean() }),
  recognition: z.object({ entries_posted: z.number(), recognized: z.record(z.string(), z.string()) }),
  accruals: z.object({ accrued: z.number(), reversed: z.number(), amounts: z.record(z.string(), z.string()) }),
  late_usage: z.object({ recorded: z.number(), exceptions_created: z.number() }),
});

export const settingsView = z.object({ required_sign_offs: z.array(z.object({ step: z.string(), roles: z.array(z.string()) })) });

export function presentSignOff(s: CloseSignOff): z.infer<typeof signOffView> {
  return {
    id: s.id,
    period: s.period,
    step: s.step,
    signer: s.signer,
    signer_role: s.signerRole,
    note: s.note ?? null,
    signed_at: s.createdAt.toISOString(),
    runs: s.runs,
    withdrawn_at: s.withdrawnAt ? s.withdrawnAt.toISOString() : null,
    withdrawn_reason: s.withdrawnReason ?? null,
  };
}

export function presentStatus(s: CloseStatus): z.infer<typeof closeStatusView> {
  return {
    period: s.period,
    ledger_status: s.ledger_status,
    closable: s.closable,
    blockers: s.blockers,
    checks: s.checks,
    exceptions: s.exceptions,
    sign_offs: { required: s.sign_offs.required, given: s.sign_offs.given.map(presentSignOff), withdrawn_now: s.sign_offs.withdrawn.map(presentSignOff) },
  };
}

export const presentMonthEnd = (m: MonthEndResult): z.infer<typeof monthEndView> => m;
export const presentSettings = (r: RequiredSignOff[]): z.infer<typeof settingsView> => ({ required_sign_offs: r });
