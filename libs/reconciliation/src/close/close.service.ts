import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditService, ConflictError, OutboxService, UnprocessableError, ValidationError, type Principal } from '@closebook/platform';
import { assertPeriod, lastDay, LedgerPeriodsService, RevenueRecognitionService, type PeriodState } from '@closebook/ledger';
import { RollupsService } from '@closebook/metering';
import { LateUsageService, UsageAccrualService } from '@closebook/invoicing';
import { ReconciliationRunsService } from '../runs/reconciliation-runs.service';
import { CheckFingerprints } from '../checks/fingerprints';
import { CHECK_KEYS, type CheckKey } from '../checks/tolerance';
import { ExceptionsService } from '../exceptions/exceptions.service';
import { LateUsageExceptions } from '../exceptions/late-usage-exceptions.service';
import type { ReconciliationRun } from '../runs/entities/reconciliation-run.entity';
import { CloseSignOff } from './entities/close-sign-off.entity';
import { CloseSettings, type RequiredSignOff } from './entities/close-settings.entity';

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
  | 'sign_off_missing';

export interface Blocker {
  code: BlockerCode;
  message: string;
  details?: Record<string, unknown>;
}

export interface CloseStatus {
  period: string;
  ledger_status: PeriodState['status'];
  closable: boolean;
  blockers: Blocker[];
  checks: { check: CheckKey; status: string | null; run_id: string | null; finished_at: string | null; fresh: boolean; failed: number }[];
  exceptions: { open: number; assigned: number; escalated: number; queues: { key: string; owner: string; escalation_contact: string; count: number }[] };
  sign_offs: { required: RequiredSignOff[]; given: CloseSignOff[]; withdrawn: CloseSignOff[] };
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
   * Exactly what blocks the close of `period`. Withdraws (and audits) the sign-offs whose data
   * changed since they were given, so what it reports is what a close would find.
   */
  async status(em: EntityManager, organizationId: string, period: string, now = new Date()): Promise<CloseStatus> {
    const p = assertPeriod(period);
    return em.transactional(async (tx) => {
      await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [PERIOD_LOCK(organizationId, p)]);
      return this.statusIn(tx, organizationId, p, now);
    });
  }

  private async statusIn(tx: EntityManager, organizationId: string, p: string, now: Date): Promise<CloseStatus> {
    const blockers: Blocker[] = [];
    const ledger = await this.periods.status(tx, organizationId, p);
    if (ledger.status === 'closed') blockers.push({ code: 'period_closed', message: `${p} is already closed` });
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
    const checks: CloseStatus['checks'] = [];
    for (const check of CHECK_KEYS) {
      const l = latest.get(check);
      const fresh = !!l && l.fingerprint === current[check].fingerprint;
      checks.push({ check, status: l?.status ?? null, run_id: l?.run_id ?? null, finished_at: l?.finished_at ?? null, fresh, failed: l?.failed ?? 0 });
      if (!l) blockers.push({ code: 'check_not_run', message: `check ${check} has not run for ${p}`, details: { check } });
      else if (!fresh) blockers.push({ code: 'check_stale', message: `the data under check ${check} changed since run ${l.run_id}: run it again`, details: { check, run_id: l.run_id } });
    }
    const errored = await tx.execute<{ check: string; run_id: string }[]>(
      `select distinct on (k.name) k.name as check, r.id as run_id, r.capture->'checks'->k.name->>'status' as status
         from reconciliation_runs r cross join lateral jsonb_array_elements_text(r.checks) as k(name)
        where r.organization_id = ? and r.period = ? and r.finished_at is not null
        order by k.name, r.finished_at desc`,
      [organizationId, p],
    );
    for (const e of errored as { check: string; run_id: string; status?: string }[]) {
      if (e.status === 'error') blockers.push({ code: 'check_error', message: `check ${e.check} ended in error in run ${e.run_id}`, details: { check: e.check, run_id: e.run_id } });
    }

    const blocking = await this.exceptions.blocking(tx, organizationId, p, { limit: 50 });
    if (blocking.total > 0) {
      blockers.push({
        code: 'open_exceptions',
        message: `${blocking.total} exception(s) of ${p} are open or assigned`,
        details: { total: blocking.total, queues: blocking.queues.map((q) => ({ key: q.key, owner: q.owner, count: q.count })), exception_ids: blocking.exceptions.map((x) => x.id) },
      });
    }

    const start = `${p}-01T00:00:00.000Z`;
    const end = new Date(Date.UTC(Number(p.slice(0, 4)), Number(p.slice(5, 7)), 1)).toISOString();
    const drafts = await tx.execute<{ id: string }[]>(
      `select id from invoices where organization_id = ? and status = 'draft' and (period_end <= ? or created_at < ?) order by created_at limit 50`,
      [organizationId, end, end],
    );
    if (drafts.length) blockers.push({ code: 'draft_invoices', message: `${drafts.length} invoice(s) billing ${p} or earlier are still drafts: finalize them`, details: { invoice_ids: drafts.map((d) => d.id) } });
    const unposted = await tx.execute<{ id: string }[]>(
      `select i.id from invoices i
        where i.organization_id = ? and i.status in ('finalized', 'paid') and i.finalized_at >= ? and i.finalized_at < ? and i.total <> 0
          and not exists (select 1 from journal_entries e where e.organization_id = i.organization_id and e.key = 'invoice:' || i.id)
        limit 50`,
      [organizationId, start, end],
    );
    if (unposted.length) blockers.push({ code: 'unposted_invoices', message: `${unposted.length} finalized invoice(s) have no ledger entry`, details: { invoice_ids: unposted.map((u) => u.id) } });

    // Sign-offs: withdraw those whose checks' data changed, then see which steps are missing.
    const required = await this.requiredSignOffs(tx, organizationId);
    const active = await tx.find(CloseSignOff, { organizationId, period: p, withdrawnAt: null }, { orderBy: { createdAt: 'asc' } });
    const withdrawn: CloseSignOff[] = [];
    for (const s of active) {
      const changed = Object.entries(s.fingerprints).filter(([check, fp]) => current[check]?.fingerprint !== fp).map(([check]) => check);
      if (!changed.length) continue;
      s.withdrawnAt = now;
      s.withdrawnReason = `data changed under ${changed.join(', ')}`;
      withdrawn.push(s);
      this.audit.record(tx, { organizationId, action: 'close.sign_off.withdrawn', resourceType: 'close_sign_off', resourceId: s.id, data: { period: p, step: s.step, changed_checks: changed } });
    }
    if (withdrawn.length) await tx.flush();
    const given = active.filter((s) => !s.withdrawnAt);
    for (const r of required) {
      if (!given.some((g) => g.step === r.step)) blockers.push({ code: 'sign_off_missing', message: `sign-off "${r.step}" is missing`, details: { step: r.step, roles: r.roles } });
    }
    return {
      period: p,
      ledger_status: ledger.status,
      closable: blockers.length === 0,
      blockers,
      checks,
      exceptions: {
        open: blocking.open,
        assigned: blocking.assigned,
        escalated: blocking.escalated,
        queues: blocking.queues.map((q) => ({ key: q.key, owner: q.owner, escalation_contact: q.escalationContact, count: q.count })),
      },
      sign_offs: { required, given, withdrawn },
    };
  }

  /**
   * Signs one step of the close over the data as the checks saw it. Refused when a check has not
   * run or is stale (there is nothing current to sign), when the signer's role may not give the
   * step, or when the same signer already gave another step.
   */
  async signOff(em: EntityManager, organizationId: string, period: string, input: { step: string; note?: string; signer: Principal; signerLabel?: string }, now = new Date()): Promise<CloseSignOff> {
    const p = assertPeriod(period);
    return em.transactional(async (tx) => {
      await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [PERIOD_LOCK(organizationId, p)]);
      const status = await this.statusIn(tx, organizationId, p, now);
      if (status.ledger_status === 'closed') throw new UnprocessableError('period_closed', `${p} is closed`, 'period');
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
      const existing = status.sign_offs.given.find((g) => g.step === input.step);
      if (existing) {
        if (existing.signer === signer) return existing;
        throw new ConflictError('already_signed', `"${input.step}" is already signed for ${p} by ${existing.signer}`, 'step');
      }
      const other = status.sign_offs.given.find((g) => g.signer === signer);
      if (other) throw new UnprocessableError('same_signer', `${signer} already gave the "${other.step}" sign-off; another person must give "${input.step}"`, 'step');
      // The fingerprints the status just compared: what this sign-off covers.
      const fps = await this.fingerprints.all(tx, organizationId, p, CHECK_KEYS);
      const s = tx.create(CloseSignOff, {
        organizationId,
        period: p,
        step: input.step,
        signerKeyId: input.signer.keyId,
        signer,
        signerRole: role,
        note: input.note ?? null,
        fingerprints: Object.fromEntries(CHECK_KEYS.map((c) => [c, fps[c].fingerprint])),
        runs: Object.fromEntries(status.checks.map((c) => [c.check, c.run_id ?? ''])),
      });
      await tx.flush();
      this.audit.record(tx, { organizationId, action: 'close.signed_off', resourceType: 'close_sign_off', resourceId: s.id, data: { period: p, step: s.step, signer, runs: s.runs } });
      return s;
    });
  }

  async signOffs(em: EntityManager, organizationId: string, period: string): Promise<CloseSignOff[]> {
    return em.find(CloseSignOff, { organizationId, period: assertPeriod(period) }, { orderBy: { createdAt: 'asc', id: 'asc' } });
  }

  /**
   * Closes and locks the month when nothing blocks it; otherwise 422 `close_blocked` with the list.
   * One transaction: the status read, the ledger lock and `period.closed` commit together.
   */
  async close(em: EntityManager, organizationId: string, period: string, by: Principal, now = new Date()): Promise<{ status: CloseStatus; ledger: PeriodState; transitioned: boolean }> {
    const p = assertPeriod(period);
    return em.transactional(async (tx) => {
      await tx.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [PERIOD_LOCK(organizationId, p)]);
      const before = await this.periods.status(tx, organizationId, p);
      if (before.status === 'closed') {
        return { status: await this.statusIn(tx, organizationId, p, now), ledger: before, transitioned: false };
      }
      const status = await this.statusIn(tx, organizationId, p, now);
      if (!status.closable) {
        // Refused: the transaction rolls back whole (withdrawals found on the way included — the next
        // status call finds and records them again), so a refused close changes nothing.
        throw new UnprocessableError('close_blocked', `${p} cannot close: ${status.blockers.map((b) => b.code).join(', ')}`, 'period', { blockers: status.blockers });
      }
      await this.periods.startClosing(tx, organizationId, p);
      const ledger = await this.periods.close(tx, organizationId, p, now);
      this.audit.record(tx, { organizationId, action: 'close.period_closed', resourceType: 'period', resourceId: p, data: { by: by.actor, sign_offs: status.sign_offs.given.map((s) => ({ step: s.step, signer: s.signer })) } });
      await this.outbox.emit(tx, {
        organizationId,
        type: 'period.closed',
        dedupeKey: `period.closed:${organizationId}:${p}:${ledger.closedAt?.toISOString() ?? now.toISOString()}`,
        payload: {
          period: p,
          closed_at: (ledger.closedAt ?? now).toISOString(),
          sign_offs: status.sign_offs.given.map((s) => ({ step: s.step, signer: s.signer, signed_at: s.createdAt.toISOString() })),
          checks: status.checks.map((c) => ({ check: c.check, status: c.status, run_id: c.run_id })),
        },
      });
      return { status: { ...status, ledger_status: 'closed', closable: false }, ledger, transitioned: true };
    });
  }
}
