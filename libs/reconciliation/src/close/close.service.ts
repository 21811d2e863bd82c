import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditService, ConflictError, OutboxService, UnprocessableError, ValidationError, type Principal } from '@closebook/platform';
import { assertPeriod, lastDay, LedgerPeriodsService, RevenueRecognitionService, type PeriodState } from '@closebook/ledger';
import { RollupsService } from '@closebook/metering';
import { LateUsageService, UsageAccrualService } from '@closebook/invoicing';
import { ReconciliationRunsService } from '../runs/reconciliation-runs.service';
import { CheckFingerprints, type Fingerprint } from '../checks/fingerprints';
import type { Population } from '../checks/populations';
import { CHECK_KEYS, type CheckKey } from '../checks/tolerance';
import { ExceptionsService } from '../exceptions/exceptions.service';
import { LateUsageExceptions } from '../exceptions/late-usage-exceptions.service';
import type { ReconciliationRun } from '../runs/entities/reconciliation-run.entity';
import { CloseSignOff } from './entities/close-sign-off.entity';
import { CloseSettings, type RequiredSignOff } from './entities/close-settings.entity';
import { PeriodClose } from './entities/period-close.entity';

/** Without settings of its own an organization needs two sign-offs, by two different signers. */
export const DEFAULT_SIGN_OFFS: RequiredSignOff[] = [
  { step: 'preparer', roles: ['finance'] },
  { step: 'reviewer', roles: ['finance'] },
];

export type BlockerCode =
  | 'period_not_ended'
  | 'period_closed'
  | 'earlier_period_open'
  | 'check_not_run'
  | 'check_stale'
  | 'check_error'
  | 'open_exceptions'
  | 'draft_invoices'
  | 'unposted_invoices'
  | 'sign_off_missing'
  | 'sign_off_stale';

export interface Blocker {
  code: BlockerCode;
  message: string;
  details?: Record<string, unknown>;
}

/** A sign-off as the status shows it: `valid` while every check's data is as it was signed, else `stale` (with the checks that changed). */
export interface SignOffView {
  id: string;
  period: string;
  step: string;
  signer: string;
  signer_role: string;
  note: string | null;
  signed_at: string;
  runs: Record<string, string>;
  state: 'valid' | 'stale';
  stale_checks: string[];
}

export interface CheckState {
  check: CheckKey;
  status: string | null;
  run_id: string | null;
  finished_at: string | null;
  fresh: boolean;
  failed: number;
  population: Population | null;
}

export interface CloseStatus {
  period: string;
  /** `open`: something blocks it; `ready`: it can close now; `closed`: closed, as recorded by its close. */
  state: 'open' | 'ready' | 'closed';
  ledger_status: PeriodState['status'];
  closable: boolean;
  blockers: Blocker[];
  /** Who closed the month and when (closed months only). */
  closed: { at: string; by: string } | null;
  checks: CheckState[];
  exceptions: { open: number; assigned: number; escalated: number; queues: { key: string; owner: string; escalation_contact: string; count: number }[] };
  sign_offs: { required: RequiredSignOff[]; given: SignOffView[] };
}

export interface MonthEndResult {
  period: string;
  rollups: { processed: number; remaining: boolean };
  recognition: { entries_posted: number; recognized: Record<string, string> };
  accruals: { accrued: number; reversed: number; amounts: Record<string, string> };
  late_usage: { recorded: number; exceptions_created: number };
}

const PERIOD_LOCK = (org: string, period: string) => `close:${org}:${period}`;

/**
 * The close of a month (SPEC §6): the month-end ledger work, the close status that says exactly
 * what blocks it, sign-offs over the data they saw, and the close itself, which locks the ledger
 * month. Nothing here duplicates the checks: a check's result is current when its fingerprint
 * equals the one computed now (CheckFingerprints), and that is what the gate and sign-offs compare.
 */
@Injectable()
export class CloseService {
  constructor(
    private readonly runs: ReconciliationRunsService,
    private readonly fingerprints: CheckFingerprints,
    private readonly exceptions: ExceptionsService,
    private readonly lateUsageExceptions: LateUsageExceptions,
    private readonly periods: LedgerPeriodsService,
    private readonly recognition: RevenueRecognitionService,
    private readonly accruals: UsageAccrualService,
    private readonly rollups: RollupsService,
    private readonly lateUsage: LateUsageService,
    private readonly audit: AuditService,
    private readonly outbox: OutboxService,
  ) {}

  /**
   * The month-end work a close run needs first, in order: pending rollups, revenue recognition,
   * usage accruals, late usage → exceptions. Each step is idempotent, so running it again is safe.
   */
  async monthEnd(em: EntityManager, organizationId: string, period: string): Promise<MonthEndResult> {
    const p = assertPeriod(period);
    let processed = 0;
    let remaining = true;
    for (let i = 0; i < 50 && remaining; i++) {
      const r = await this.rollups.processDirty(em.fork(), { organizationId, budgetMs: 60_000 });
      processed += r.processed;
      remaining = r.remaining || r.busy > 0;
    }
    // A month's events and documents usually arrive in bulk; the checks' set-based plans need row counts
    // that know it (stale statistics turned one check from seconds into minutes). Sample-based: seconds.
    await em.getConnection().execute('analyze usage_events, usage_rollups, invoices, invoice_lines, journal_entries, journal_lines');
    const recognized = await this.recognition.recognize(em.fork(), organizationId, p);
    const accrued = await this.accruals.accrue(em.fork(), organizationId, p);
    const watched = await this.lateUsage.watch(em.fork(), new Date(), organizationId);
    const synced = await this.lateUsageExceptions.sync(em.fork(), organizationId);
    return {
      period: p,
      rollups: { processed, remaining },
      recognition: { entries_posted: recognized.entriesPosted, recognized: Object.fromEntries(Object.entries(recognized.recognized).map(([c, m]) => [c, m.format()])) },
      accruals: { accrued: accrued.accrued, reversed: accrued.reversed, amounts: accrued.amounts },
      late_usage: { recorded: watched.late_usage, exceptions_created: synced.created },
    };
  }

  /** Month-end work, then every check inline: what `close run` does. */
  async runClose(em: EntityManager, organizationId: string, period: string, startedBy: string): Promise<{ monthEnd: MonthEndResult; run: ReconciliationRun }> {
    const p = assertPeriod(period);
    const state = await this.periods.status(em, organizationId, p);
    if (state.status === 'closed') throw new UnprocessableError('period_closed', `${p} is closed`, 'period');
    const monthEnd = await this.monthEnd(em, organizationId, p);
    const run = await this.runs.runNow(em.fork(), organizationId, p, { startedBy });
    return { monthEnd, run };
  }

  async requiredSignOffs(em: EntityManager, organizationId: string): Promise<RequiredSignOff[]> {
    const s = await em.findOne(CloseSettings, { organizationId });
    return s?.requiredSignOffs ?? DEFAULT_SIGN_OFFS;
  }

  async setRequiredSignOffs(em: EntityManager, organizationId: string, required: RequiredSignOff[]): Promise<RequiredSignOff[]> {
    const steps = required.map((r) => r.step);
    if (new Set(steps).size !== steps.length) throw new ValidationError('duplicate_step', 'each sign-off step may appear once', 'required_sign_offs');
    return em.transactional(async (tx) => {
      await tx.execute(
        `insert into close_settings (id, created_at, organization_id, required_sign_offs, updated_at) values (gen_random_uuid(), now(), ?, ?::jsonb, now())
         on conflict (organization_id) do update set required_sign_offs = excluded.required_sign_offs, updated_at = now()`,
        [organizationId, JSON.stringify(required)],
      );
      this.audit.record(tx, { organizationId, action: 'close.settings.updated', resourceType: 'close_settings', resourceId: organizationId, data: { required_sign_offs: required } });
      return required;
    });
  }

  /**
   * Exactly what blocks the close of `period` — a read: it writes no row and no audit entry, for
   * any role. A sign-off's validity is derived (its fingerprints against the current ones); a
   * closed month answers what its close recorded, whatever happened since.
   */
  async status(em: EntityManager, organizationId: string, period: string, now = new Date()): Promise<CloseStatus> {
    const p = assertPeriod(period);
    const ledger = await this.periods.status(em, organizationId, p);
    if (ledger.status === 'closed') return this.closedStatus(em, organizationId, p, ledger);
    const { current: _current, active: _active, ...status } = await this.statusIn(em, organizationId, p, ledger, now);
    return status;
  }

  private async statusIn(tx: EntityManager, organizationId: string, p: string, ledger: PeriodState, now: Date): Promise<CloseStatus & { current: Record<string, Fingerprint>; active: CloseSignOff[] }> {
    const blockers: Blocker[] = [];
    if (lastDay(p) >= now.toISOString().slice(0, 10)) blockers.push({ code: 'period_not_ended', message: `${p} has not ended yet` });
    const earlier = await tx.execute<{ period: string }[]>(
      `select distinct to_char(e.entry_date, 'YYYY-MM') as period from journal_entries e
        where e.organization_id = ? and e.entry_date < ?::date
          and not exists (select 1 from accounting_periods ap where ap.organization_id = e.organization_id
                            and ap.period = to_char(e.entry_date, 'YYYY-MM') and ap.status = 'closed')
        order by 1 limit 12`,
      [organizationId, `${p}-01`],
    );
    if (earlier.length) blockers.push({ code: 'earlier_period_open', message: `close ${earlier.map((r) => r.period).join(', ')} first`, details: { periods: earlier.map((r) => r.period) } });

    // Checks: each must have run, without error, on the data as it is now.
    const latest = new Map((await this.runs.latest(tx, organizationId, p)).map((l) => [l.check, l]));
    const current = await this.fingerprints.all(tx, organizationId, p, CHECK_KEYS);
    const checks: CheckState[] = [];
    for (const check of CHECK_KEYS) {
      const l = latest.get(check);
      const fresh = !!l && l.fingerprint === current[check].fingerprint;
      checks.push({ check, status: l?.status ?? null, run_id: l?.run_id ?? null, finished_at: l?.finished_at ?? null, fresh, failed: l?.failed ?? 0, population: l?.population ?? null });
      if (!l) blockers.push({ code: 'check_not_run', message: `check ${check} has not run for ${p}`, details: { check } });
      else if (!fresh) blockers.push({ code: 'check_stale', message: `the data under check ${check} changed since run ${l.run_id}: run it again`, details: { check, run_id: l.run_id } });
    }
    const errored = await tx.execute<{ check: string; run_id: string; status?: string; error?: string }[]>(
      `select distinct on (k.name) k.name as check, r.id as run_id, r.capture->'checks'->k.name->>'status' as status, r.capture->'checks'->k.name->>'error' as error
         from reconciliation_runs r cross join lateral jsonb_array_elements_text(r.checks) as k(name)
        where r.organization_id = ? and r.period = ? and r.finished_at is not null
        order by k.name, r.finished_at desc`,
      [organizationId, p],
    );
    for (const e of errored) {
      if (e.status === 'error') blockers.push({ code: 'check_error', message: `check ${e.check} ended in error in run ${e.run_id}${e.error ? `: ${e.error}` : ''}`, details: { check: e.check, run_id: e.run_id } });
    }

    const blocking = await this.exceptions.blocking(tx, organizationId, p, { limit: 50 });
    if (blocking.total > 0) {
      blockers.push({
        code: 'open_exceptions',
        message: `${blocking.total} exception(s) of ${p} are open or assigned`,
        details: { total: blocking.total, queues: blocking.queues.map((q) => ({ key: q.key, owner: q.owner, count: q.count })), exception_ids: blocking.exceptions.map((x) => x.id) },
      });
    }

    // Documents dated in the month or earlier (their accounting dates) that are drafts or unposted.
    const drafts = await tx.execute<{ id: string }[]>(
      `select id from invoices where organization_id = ? and status = 'draft' and issue_date <= ?::date order by issue_date, id limit 50`,
      [organizationId, lastDay(p)],
    );
    if (drafts.length) blockers.push({ code: 'draft_invoices', message: `${drafts.length} invoice(s) dated in ${p} or earlier are still drafts: finalize them`, details: { invoice_ids: drafts.map((d) => d.id) } });
    const unposted = await tx.execute<{ id: string }[]>(
      `select i.id from invoices i
        where i.organization_id = ? and i.status in ('finalized', 'paid') and i.issue_date >= ?::date and i.issue_date <= ?::date and i.total <> 0
          and not exists (select 1 from journal_entries e where e.organization_id = i.organization_id and e.key = 'invoice:' || i.id)
        limit 50`,
      [organizationId, `${p}-01`, lastDay(p)],
    );
    if (unposted.length) blockers.push({ code: 'unposted_invoices', message: `${unposted.length} finalized invoice(s) have no ledger entry`, details: { invoice_ids: unposted.map((u) => u.id) } });

    // Sign-offs: each required step needs a valid one (signed over the data as it is now).
    const required = await this.requiredSignOffs(tx, organizationId);
    const active = await tx.find(CloseSignOff, { organizationId, period: p, withdrawnAt: null }, { orderBy: { createdAt: 'asc' } });
    const given = active.map((s) => signOffView(s, staleChecks(s, current)));
    for (const r of required) {
      const g = given.find((x) => x.step === r.step);
      if (!g) blockers.push({ code: 'sign_off_missing', message: `sign-off "${r.step}" is missing`, details: { step: r.step, roles: r.roles } });
      else if (g.state === 'stale') {
        blockers.push({
          code: 'sign_off_stale',
          message: `sign-off "${r.step}" by ${g.signer} is stale: the data under ${g.stale_checks.join(', ')} changed since it was given; sign again`,
          details: { step: r.step, sign_off_id: g.id, signer: g.signer, stale_checks: g.stale_checks },
        });
      }
    }
    return {
      period: p,
      state: blockers.length === 0 ? 'ready' : 'open',
      ledger_status: ledger.status,
      closable: blockers.length === 0,
      blockers,
      closed: null,
      checks,
      exceptions: {
        open: blocking.open,
        assigned: blocking.assigned,
        escalated: blocking.escalated,
        queues: blocking.queues.map((q) => ({ key: q.key, owner: q.owner, escalation_contact: q.escalationContact, count: q.count })),
      },
      sign_offs: { required, given },
      current,
      active,
    };
  }

  /**
   * A closed month as its close recorded it (period_closes): nothing done since — a run, a sign-off,
   * a plan change in a later month — alters what it closed on. A month closed before closes were
   * recorded shows what the database still says of that moment (sign-offs and runs before it).
   */
  private async closedStatus(em: EntityManager, organizationId: string, p: string, ledger: PeriodState): Promise<CloseStatus> {
    const record = await em.findOne(PeriodClose, { organizationId, period: p }, { orderBy: { closedAt: 'desc', id: 'desc' } });
    const closedAt = record?.closedAt ?? ledger.closedAt ?? new Date(0);
    const by = record?.closedBy ?? 'unknown';
    const base = {
      period: p,
      state: 'closed' as const,
      ledger_status: ledger.status,
      closable: false,
      blockers: [{ code: 'period_closed' as const, message: `${p} was closed on ${closedAt.toISOString()} by ${by}`, details: { closed_at: closedAt.toISOString(), closed_by: by } }],
      closed: { at: closedAt.toISOString(), by },
    };
    if (record) {
      return {
        ...base,
        checks: record.checks.map((c) => ({ ...c, check: c.check as CheckKey, fresh: true })),
        exceptions: { ...record.exceptions, queues: [] },
        sign_offs: { required: record.requiredSignOffs, given: record.signOffs.map((s) => ({ ...s, period: p, state: 'valid' as const, stale_checks: [] })) },
      };
    }
    const latest = new Map((await this.runs.latest(em, organizationId, p)).filter((l) => l.finished_at && l.finished_at <= closedAt.toISOString()).map((l) => [l.check, l]));
    const signed = await em.find(CloseSignOff, { organizationId, period: p, createdAt: { $lte: closedAt }, $or: [{ withdrawnAt: null }, { withdrawnAt: { $gt: closedAt } }] }, { orderBy: { createdAt: 'asc' } });
    return {
      ...base,
      checks: CHECK_KEYS.map((check) => {
        const l = latest.get(check);
        return { check, status: l?.status ?? null, run_id: l?.run_id ?? null, finished_at: l?.finished_at ?? null, fresh: true, failed: l?.failed ?? 0, population: l?.population ?? null };
      }),
      exceptions: { open: 0, assigned: 0, escalated: 0, queues: [] },
      sign_offs: { required: await this.requiredSignOffs(em, organizationId), given: signed.map((s) => signOffView(s, [])) },
    };
  }

  /**
   * Signs one step of the close over the data as the checks saw it. Refused when a check has not
   * run or is stale (there is nothing current to sign), when the signer's role may not give the
   * step, or when the same signer already gave another step.
   */
  async signOff(em: EntityManager, organizationId: string, period: string, input: { step: string; note?: string; signer: Principal; signerLabel?: string }, now = new Date()): Promise<SignOffView> {
    const p = assertPeriod(period);
    return em.transactional(async (tx) => {
      await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [PERIOD_LOCK(organizationId, p)]);
      const ledger = await this.periods.status(tx, organizationId, p);
      if (ledger.status === 'closed') throw new UnprocessableError('period_closed', `${p} is closed`, 'period');
      const status = await this.statusIn(tx, organizationId, p, ledger, now);
      const req = status.sign_offs.required.find((r) => r.step === input.step);
      if (!req) throw new ValidationError('unknown_step', `"${input.step}" is not a sign-off step of this organization (${status.sign_offs.required.map((r) => r.step).join(', ')})`, 'step');
      const role = input.signer.role;
      if (role !== 'admin' && role !== 'system' && !req.roles.includes(role)) {
        throw new UnprocessableError('role_not_allowed', `a ${role} key cannot give the "${req.step}" sign-off (allowed: ${['admin', ...req.roles].join(', ')})`, 'step');
      }
      const notCurrent = status.blockers.filter((b) => b.code === 'check_not_run' || b.code === 'check_stale' || b.code === 'check_error');
      if (notCurrent.length) {
        throw new UnprocessableError('checks_not_current', 'every check must have run on the current data before a sign-off', 'period', { blockers: notCurrent });
      }
      const signer = input.signerLabel ?? (input.signer.keyId ? `key:${input.signer.keyId}` : input.signer.actor);
      const valid = status.sign_offs.given.filter((g) => g.state === 'valid');
      const existing = valid.find((g) => g.step === input.step);
      if (existing) {
        if (existing.signer === signer) return existing;
        throw new ConflictError('already_signed', `"${input.step}" is already signed for ${p} by ${existing.signer}`, 'step');
      }
      const other = valid.find((g) => g.signer === signer);
      if (other) throw new UnprocessableError('same_signer', `${signer} already gave the "${other.step}" sign-off; another person must give "${input.step}"`, 'step');
      // A stale sign-off of this step is superseded by this one: withdrawn by this write (never by a read).
      const stale = status.active.find((s) => s.step === input.step);
      if (stale) {
        const changed = staleChecks(stale, status.current);
        stale.withdrawnAt = now;
        stale.withdrawnReason = `superseded: the data under ${changed.join(', ')} changed since it was given`;
        await tx.flush();
        this.audit.record(tx, { organizationId, action: 'close.sign_off.withdrawn', resourceType: 'close_sign_off', resourceId: stale.id, data: { period: p, step: stale.step, changed_checks: changed, superseded: true } });
      }
      const s = tx.create(CloseSignOff, {
        organizationId,
        period: p,
        step: input.step,
        signerKeyId: input.signer.keyId,
        signer,
        signerRole: role,
        note: input.note ?? null,
        // The fingerprints the status just compared: what this sign-off covers.
        fingerprints: Object.fromEntries(CHECK_KEYS.map((c) => [c, status.current[c].fingerprint])),
        runs: Object.fromEntries(status.checks.map((c) => [c.check, c.run_id ?? ''])),
      });
      await tx.flush();
      this.audit.record(tx, { organizationId, action: 'close.signed_off', resourceType: 'close_sign_off', resourceId: s.id, data: { period: p, step: s.step, signer, runs: s.runs } });
      return signOffView(s, []);
    });
  }

  async signOffs(em: EntityManager, organizationId: string, period: string): Promise<CloseSignOff[]> {
    return em.find(CloseSignOff, { organizationId, period: assertPeriod(period) }, { orderBy: { createdAt: 'asc', id: 'asc' } });
  }

  /**
   * Closes and locks the month when nothing blocks it; otherwise 422 `close_blocked` with the list.
   * One transaction: the status read, the ledger lock, the close record and `period.closed` commit
   * together. Closing a closed month changes nothing and answers its recorded status.
   */
  async close(em: EntityManager, organizationId: string, period: string, by: Principal & { label?: string }, now = new Date()): Promise<{ status: CloseStatus; ledger: PeriodState; transitioned: boolean }> {
    const p = assertPeriod(period);
    return em.transactional(async (tx) => {
      await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [PERIOD_LOCK(organizationId, p)]);
      const before = await this.periods.status(tx, organizationId, p);
      if (before.status === 'closed') {
        return { status: await this.closedStatus(tx, organizationId, p, before), ledger: before, transitioned: false };
      }
      const status = await this.statusIn(tx, organizationId, p, before, now);
      if (!status.closable) {
        throw new UnprocessableError('close_blocked', `${p} cannot close: ${status.blockers.map((b) => b.code).join(', ')}`, 'period', { blockers: status.blockers });
      }
      await this.periods.startClosing(tx, organizationId, p);
      const ledger = await this.periods.close(tx, organizationId, p, now);
      const closedAt = ledger.closedAt ?? now;
      const closedBy = by.label ?? (by.keyId ? `key:${by.keyId}` : by.actor);
      const signOffs = status.sign_offs.given.map(({ id, step, signer, signer_role, note, signed_at, runs }) => ({ id, step, signer, signer_role, note, signed_at, runs }));
      tx.create(PeriodClose, {
        organizationId,
        period: p,
        closedAt,
        closedBy,
        closedByKeyId: by.keyId,
        requiredSignOffs: status.sign_offs.required,
        signOffs,
        checks: status.checks.map((c) => ({ ...c, fingerprint: status.current[c.check].fingerprint })).map(({ fresh: _fresh, ...c }) => c),
        exceptions: { open: status.exceptions.open, assigned: status.exceptions.assigned, escalated: status.exceptions.escalated },
      });
      await tx.flush();
      this.audit.record(tx, { organizationId, action: 'close.period_closed', resourceType: 'period', resourceId: p, data: { by: closedBy, sign_offs: signOffs.map((s) => ({ step: s.step, signer: s.signer })) } });
      await this.outbox.emit(tx, {
        organizationId,
        type: 'period.closed',
        dedupeKey: `period.closed:${organizationId}:${p}:${closedAt.toISOString()}`,
        payload: {
          period: p,
          closed_at: closedAt.toISOString(),
          closed_by: closedBy,
          sign_offs: signOffs.map((s) => ({ step: s.step, signer: s.signer, signed_at: s.signed_at })),
          checks: status.checks.map((c) => ({ check: c.check, status: c.status, run_id: c.run_id })),
        },
      });
      return { status: await this.closedStatus(tx, organizationId, p, ledger), ledger, transitioned: true };
    });
  }
}

/** The checks whose data changed since a sign-off was given (its fingerprints against the current ones). */
function staleChecks(s: CloseSignOff, current: Record<string, Fingerprint>): string[] {
  return Object.entries(s.fingerprints)
    .filter(([check, fp]) => current[check] !== undefined && current[check].fingerprint !== fp)
    .map(([check]) => check);
}

function signOffView(s: CloseSignOff, stale: string[]): SignOffView {
  return {
    id: s.id,
    period: s.period,
    step: s.step,
    signer: s.signer,
    signer_role: s.signerRole,
    note: s.note ?? null,
    signed_at: s.createdAt.toISOString(),
    runs: s.runs,
    state: stale.length ? 'stale' : 'valid',
    stale_checks: stale,
  };
}
