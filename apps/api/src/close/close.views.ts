import { z } from 'zod';
import type { CloseSignOff, CloseStatus, MonthEndResult, RequiredSignOff, SignOffView } from '@closebook/reconciliation';
import { populationView } from '../reconciliation/reconciliation.views';

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

export const signOffStateView = z.object({
  id: z.string(),
  period: z.string(),
  step: z.string(),
  signer: z.string(),
  signer_role: z.string(),
  note: z.string().nullable(),
  signed_at: z.string(),
  runs: z.record(z.string(), z.string()),
  state: z.enum(['valid', 'stale']).meta({ description: 'valid while the data under every check is as it was signed; stale once it changed (sign again)' }),
  stale_checks: z.array(z.string()).meta({ description: 'The checks whose data changed since the sign-off was given' }),
});

export const blockerView = z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() });

export const closeStatusView = z.object({
  period: z.string(),
  state: z.enum(['open', 'ready', 'closed']).meta({ description: 'open: something blocks the close; ready: it can close now; closed: closed, shown as its close recorded it' }),
  ledger_status: z.enum(['open', 'closing', 'closed']),
  closable: z.boolean(),
  blockers: z.array(blockerView).meta({ description: 'Exactly what blocks the close; empty when it can close (a closed month lists period_closed)' }),
  closed: z.object({ at: z.string(), by: z.string() }).nullable().meta({ description: 'Who closed the month and when' }),
  checks: z.array(
    z.object({
      check: z.string(),
      status: z.string().nullable().meta({ description: 'passed | failed | not_applicable (nothing to compare) | null (not run)' }),
      run_id: z.string().nullable(),
      finished_at: z.string().nullable(),
      fresh: z.boolean(),
      failed: z.number(),
      population: populationView,
    }),
  ),
  exceptions: z.object({
    open: z.number(),
    assigned: z.number(),
    escalated: z.number(),
    queues: z.array(z.object({ key: z.string(), owner: z.string(), escalation_contact: z.string(), count: z.number() })),
  }),
  sign_offs: z.object({
    required: z.array(z.object({ step: z.string(), roles: z.array(z.string()) })),
    given: z.array(signOffStateView).meta({ description: 'The sign-off in force for each step, valid or stale (a read never withdraws one)' }),
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
    state: s.state,
    ledger_status: s.ledger_status,
    closable: s.closable,
    blockers: s.blockers,
    closed: s.closed,
    checks: s.checks,
    exceptions: s.exceptions,
    sign_offs: { required: s.sign_offs.required, given: s.sign_offs.given.map(presentSignOffState) },
  };
}

export const presentSignOffState = (s: SignOffView): z.infer<typeof signOffStateView> => ({ ...s, stale_checks: [...s.stale_checks] });

export const presentMonthEnd = (m: MonthEndResult): z.infer<typeof monthEndView> => m;
export const presentSettings = (r: RequiredSignOff[]): z.infer<typeof settingsView> => ({ required_sign_offs: r });
