/**
 * Reconciliation runs (SPEC §6): a run of some or all checks for a month, its results and its
 * capture. `start` creates the run and hands it to a BullMQ flow (parent `reconciliation.run`, one
 * child `reconciliation.check` per check); `runNow` runs the same code inline (CLI, demo, tests).
 * Either way each check goes through `runCheck` and the run ends with `finish`.
 */
import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createHash } from 'node:crypto';
import { AuditService, canonicalJson, decodeCursor, encodeCursor, NotFoundError, ValidationError, isUuid, type Page } from '@closebook/platform';
import { assertPeriod } from '@closebook/ledger';
import { ExceptionsService } from '../exceptions/exceptions.service';
import type { RecordManyItem } from '../exceptions/exceptions.service';
import { ReconciliationChecks } from '../checks/checks.registry';
import { CheckFingerprints } from '../checks/fingerprints';
import { TolerancesService } from '../checks/tolerances.service';
import { CHECK_KEYS, isCheckKey, type CheckKey, type ToleranceInForce } from '../checks/tolerance';
import type { CheckOutcome } from '../checks/check';
import { populationVerdict, type Population } from '../checks/populations';
import { ReconciliationRun, type RunStatus } from './entities/reconciliation-run.entity';
import { ReconciliationResult } from './entities/reconciliation-result.entity';
import { ReconciliationFlows } from './reconciliation-flows';

export const CAPTURE_VERSION = 1;

/** What a run keeps per check in its capture. */
export interface CheckCapture {
  /** `not_applicable`: the month has nothing this check compares (population.reason says what). */
  status: 'passed' | 'failed' | 'error' | 'not_applicable';
  population?: Population;
  items?: number;
  passed?: number;
  failed?: number;
  warned?: number;
  results_hash?: string;
  fingerprint?: string;
  inputs?: Record<string, unknown>;
  tolerance?: ToleranceInForce;
  exceptions?: { created: number; updated: number; reopened: number; summarized: boolean; auto_resolved: number };
  started_at?: string;
  finished_at?: string;
  error?: string;
}

export interface LatestCheck {
  check: CheckKey;
  run_id: string;
  run_status: RunStatus;
  status: CheckCapture['status'];
  finished_at: string | null;
  items: number;
  passed: number;
  failed: number;
  warned: number;
  fingerprint: string | null;
  results_hash: string | null;
  population: Population | null;
}

export interface StartOptions {
  checks?: string[];
  startedBy: string;
}

export interface ResultsQuery {
  check?: string;
  status?: 'pass' | 'fail' | 'warn';
  limit: number;
  cursor?: string;
}

/** Failing results sent to ExceptionsService per call (its cap counts new items per call). */
const EXCEPTION_PAGE = 5000;


/** Checks run at once by `runNow`: each is one long statement or page loop, so two keep both cores of a small box busy. */
export const RUN_NOW_LANES = 2;
@Injectable()
export class ReconciliationRunsService {
  private readonly logger = new Logger('ReconciliationRuns');

  constructor(
    private readonly checks: ReconciliationChecks,
    private readonly tolerances: TolerancesService,
    private readonly fingerprints: CheckFingerprints,
    private readonly exceptions: ExceptionsService,
    private readonly flows: ReconciliationFlows,
    private readonly audit: AuditService,
  ) {}

  /** Creates a run (status `queued`) and starts its flow; answers the run. */
  async start(em: EntityManager, organizationId: string, period: string, opts: StartOptions): Promise<ReconciliationRun> {
    const run = await this.create(em, organizationId, period, opts);
    try {
      await this.flows.start(run);
    } catch (err) {
      await em.execute(`update reconciliation_runs set status = 'error', error = ?, finished_at = now() where id = ?`, [`could not enqueue: ${(err as Error).message}`.slice(0, 1000), run.id]);
      throw err;
    }
    return run;
  }

  /**
   * Runs every requested check inline, then finishes the run: the same code the flow runs, and like
   * the flow's children the checks run side by side (`lanes` at a time, each on its own connection),
   * taken in run order so the two that read the month's raw events and lines start first.
   */
  async runNow(em: EntityManager, organizationId: string, period: string, opts: Partial<StartOptions> & { lanes?: number } = {}): Promise<ReconciliationRun> {
    const run = await this.create(em, organizationId, period, { checks: opts.checks, startedBy: opts.startedBy ?? 'system:inline' });
    const queue = [...(run.checks as CheckKey[])];
    const lane = async () => {
      for (let key = queue.shift(); key; key = queue.shift()) {
        const own = em.fork();
        try {
          await this.runCheck(own, run.id, key);
        } catch (err) {
          this.logger.error({ err, run_id: run.id, check: key }, 'reconciliation check failed');
          await this.recordCheckError(own, run.id, key, err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, opts.lanes ?? RUN_NOW_LANES) }, lane));
    return this.finish(em, run.id);
  }

  /** Validates and writes the run with the tolerances in force (a run uses one set throughout). */
  async create(em: EntityManager, organizationId: string, period: string, opts: StartOptions): Promise<ReconciliationRun> {
    const p = assertPeriod(period);
    const checks = this.requested(opts.checks);
    const tolerances = await this.tolerances.inForce(em, organizationId);
    return em.transactional(async (tx) => {
      const run = tx.create(ReconciliationRun, {
        organizationId,
        period: p,
        status: 'queued',
        startedBy: opts.startedBy,
        checks,
        capture: {
          version: CAPTURE_VERSION,
          organization_id: organizationId,
          period: p,
          checks_requested: checks,
          tolerances: Object.fromEntries(checks.map((c) => [c, tolerances[c]])),
          checks: {},
        },
        inputsFingerprint: {},
      });
      tx.persist(run);
      await tx.flush();
      (run.capture as Record<string, unknown>).run_id = run.id;
      await tx.execute(`update reconciliation_runs set capture = jsonb_set(capture, '{run_id}', to_jsonb(?::text)) where id = ?`, [run.id, run.id]);
      this.audit.record(tx, {
        organizationId,
        action: 'reconciliation.run.started',
        resourceType: 'reconciliation_run',
        resourceId: run.id,
        data: { period: p, checks, started_by: opts.startedBy },
      });
      return run;
    });
  }

  /**
   * Runs one check of a run: writes its results (in one transaction: a failed attempt leaves
   * nothing), records its failures as exceptions (ExceptionsService.recordMany, keyed by check,
   * item and period), auto-resolves this period's open items of the check that pass now, and
   * stores the check's summary in the run's capture. A check already captured is not run again.
   */
  async runCheck(em: EntityManager, runId: string, key: CheckKey): Promise<CheckCapture> {
    const run = await this.load(em, runId);
    const done = (run.capture.checks as Record<string, CheckCapture> | undefined)?.[key];
    if (done && done.status !== 'error') return done;
    if (!run.checks.includes(key)) throw new ValidationError('invalid_value', `check ${key} is not part of run ${runId}`, 'check');
    await em.execute(`update reconciliation_runs set status = 'running', started_at = coalesce(started_at, now()) where id = ? and status in ('queued', 'running')`, [runId]);
    const tolerance = (run.capture.tolerances as Record<string, ToleranceInForce>)[key];
    const startedAt = new Date().toISOString();
    const check = this.checks.get(key);
    const outcome: CheckOutcome = await em.transactional((tx) => check.run(tx, { organizationId: run.organizationId, period: run.period, runId, tolerance }));
    const judged = populationVerdict(key, outcome.inputs, outcome.failed);
    if (judged.verdict === 'error') {
      // Its results stay (they are the run's record); the check itself is an error, which blocks the close.
      const capture: CheckCapture = { status: 'error', error: judged.message, population: judged.population, fingerprint: outcome.fingerprint, inputs: outcome.inputs, tolerance, started_at: startedAt, finished_at: new Date().toISOString() };
      await em.execute(`update reconciliation_runs set capture = jsonb_set(capture, array['checks', ?::text], ?::jsonb, true) where id = ?`, [key, JSON.stringify(capture), runId]);
      return capture;
    }
    const exceptions = await this.recordExceptions(em, run, key, check.itemType);
    const capture: CheckCapture = {
      status: judged.verdict === 'not_applicable' ? 'not_applicable' : outcome.failed > 0 ? 'failed' : 'passed',
      population: judged.population,
      items: outcome.items,
      passed: outcome.passed,
      failed: outcome.failed,
      warned: outcome.warned,
      results_hash: outcome.results_hash,
      fingerprint: outcome.fingerprint,
      inputs: outcome.inputs,
      tolerance,
      exceptions,
      started_at: startedAt,
      finished_at: new Date().toISOString(),
    };
    await em.execute(
      `update reconciliation_runs
         set capture = jsonb_set(capture, array['checks', ?::text], ?::jsonb, true),
             inputs_fingerprint = inputs_fingerprint || jsonb_build_object(?::text, ?::text)
       where id = ?`,
      [key, JSON.stringify(capture), key, outcome.fingerprint, runId],
    );
    return capture;
  }

  /** Records that a check could not run (its last attempt threw). */
  async recordCheckError(em: EntityManager, runId: string, key: CheckKey, err: unknown): Promise<void> {
    const capture: CheckCapture = { status: 'error', error: String((err as Error)?.message ?? err).slice(0, 1000), finished_at: new Date().toISOString() };
    await em.execute(`update reconciliation_runs set capture = jsonb_set(capture, array['checks', ?::text], ?::jsonb, true) where id = ?`, [key, JSON.stringify(capture), runId]);
  }

  /**
   * Ends a run once its checks are done: `passed` when every check passed, `failed` when one has
   * failing items, `error` when one could not run (or never reported); seals the capture with its
   * SHA-256. Finishing twice changes nothing.
   */
  async finish(em: EntityManager, runId: string): Promise<ReconciliationRun> {
    return em.transactional(async (tx) => {
      const [locked] = await tx.execute<{ id: string }[]>(`select id from reconciliation_runs where id = ? for update`, [runId]);
      if (!locked) throw new NotFoundError('reconciliation_run', runId);
      const run = await tx.findOneOrFail(ReconciliationRun, { id: runId }, { refresh: true });
      if (run.status === 'passed' || run.status === 'failed' || run.status === 'error') return run;
      const checks = (run.capture.checks ?? {}) as Record<string, CheckCapture>;
      const missing = run.checks.filter((c) => !checks[c]);
      for (const c of missing) checks[c] = { status: 'error', error: 'the check did not report (its job failed or was lost)' };
      const statuses = run.checks.map((c) => checks[c].status);
      const status: RunStatus = statuses.includes('error') ? 'error' : statuses.includes('failed') ? 'failed' : 'passed';
      const finishedAt = new Date();
      const capture = { ...run.capture, checks, status, started_at: (run.startedAt ?? run.createdAt).toISOString(), finished_at: finishedAt.toISOString() };
      const hash = createHash('sha256').update(canonicalJson(capture)).digest('hex');
      await tx.execute(
        `update reconciliation_runs set status = ?, finished_at = ?, started_at = coalesce(started_at, created_at), capture = ?::jsonb, capture_hash = ?, error = ? where id = ?`,
        [status, finishedAt.toISOString(), JSON.stringify(capture), hash, missing.length ? `checks without a result: ${missing.join(', ')}` : null, runId],
      );
      this.audit.record(tx, {
        organizationId: run.organizationId,
        action: 'reconciliation.run.finished',
        resourceType: 'reconciliation_run',
        resourceId: run.id,
        data: { period: run.period, status, capture_hash: hash, checks: Object.fromEntries(run.checks.map((c) => [c, { status: checks[c].status, failed: checks[c].failed ?? null }])) },
      });
      return tx.findOneOrFail(ReconciliationRun, { id: runId }, { refresh: true });
    });
  }

  /** Per check, the latest finished run that ran it (passed or failed): its summary and fingerprint. */
  async latest(em: EntityManager, organizationId: string, period: string): Promise<LatestCheck[]> {
    const p = assertPeriod(period);
    const rows = await em.execute<{ check: CheckKey; run_id: string; run_status: RunStatus; finished_at: Date | null; c: CheckCapture | string }[]>(
      `select distinct on (k.ck) k.ck as "check", r.id as run_id, r.status as run_status, r.finished_at, r.capture->'checks'->k.ck as c
       from reconciliation_runs r
       cross join lateral jsonb_array_elements_text(r.checks) as k(ck)
       where r.organization_id = ? and r.period = ? and r.status in ('passed', 'failed')
         and r.capture->'checks'->k.ck->>'status' in ('passed', 'failed', 'not_applicable')
       order by k.ck, r.finished_at desc, r.created_at desc`,
      [organizationId, p],
    );
    return rows.map((r) => {
      const c = (typeof r.c === 'string' ? JSON.parse(r.c) : r.c) as CheckCapture;
      return {
        check: r.check,
        run_id: r.run_id,
        run_status: r.run_status,
        status: c.status,
        finished_at: r.finished_at ? new Date(r.finished_at).toISOString() : null,
        items: c.items ?? 0,
        passed: c.passed ?? 0,
        failed: c.failed ?? 0,
        warned: c.warned ?? 0,
        fingerprint: c.fingerprint ?? null,
        results_hash: c.results_hash ?? null,
        population: c.population ?? null,
      };
    });
  }

  /** Whether each check's latest result still describes the data: its fingerprint against a fresh one. */
  async freshness(em: EntityManager, organizationId: string, period: string): Promise<{ check: CheckKey; latest: LatestCheck | null; current_fingerprint: string; fresh: boolean }[]> {
    const latest = new Map((await this.latest(em, organizationId, period)).map((l) => [l.check, l]));
    const out = [];
    for (const check of CHECK_KEYS) {
      const cur = await this.fingerprints.current(em, organizationId, period, check);
      const l = latest.get(check) ?? null;
      out.push({ check, latest: l, current_fingerprint: cur.fingerprint, fresh: !!l && l.fingerprint === cur.fingerprint });
    }
    return out;
  }

  async list(em: EntityManager, organizationId: string, period: string, q: { limit: number; cursor?: string }): Promise<Page<ReconciliationRun>> {
    const p = assertPeriod(period);
    const c = decodeCursor(q.cursor);
    const rows = await em.find(
      ReconciliationRun,
      { organizationId, period: p, ...(c ? { $or: [{ createdAt: { $lt: new Date(c.t) } }, { createdAt: new Date(c.t), id: { $lt: c.id } }] } : {}) },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 },
    );
    const more = rows.length > q.limit;
    const data = more ? rows.slice(0, q.limit) : rows;
    const last = data[data.length - 1];
    return { data, next_cursor: more && last ? encodeCursor(last.createdAt, last.id) : null };
  }

  /** A run of the organization and month (404 otherwise). */
  async get(em: EntityManager, organizationId: string, period: string, id: string): Promise<ReconciliationRun> {
    const p = assertPeriod(period);
    if (!isUuid(id)) throw new NotFoundError('reconciliation_run', String(id));
    const run = await em.findOne(ReconciliationRun, { id, organizationId, period: p }, { refresh: true });
    if (!run) throw new NotFoundError('reconciliation_run', id);
    return run;
  }

  /** A run's results, by check and item key (cursor = the last item's position). */
  async results(em: EntityManager, organizationId: string, period: string, runId: string, q: ResultsQuery): Promise<Page<ReconciliationResult>> {
    await this.get(em, organizationId, period, runId);
    if (q.check !== undefined && !isCheckKey(q.check)) throw new ValidationError('invalid_value', `check must be one of ${CHECK_KEYS.join(', ')}`, 'check');
    let after: { c: string; k: string } | null = null;
    if (q.cursor) {
      try {
        const v = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8'));
        if (typeof v?.c === 'string' && typeof v?.k === 'string') after = v;
      } catch {
        /* below */
      }
      if (!after) throw new ValidationError('invalid_cursor', 'cursor is not one this API returned', 'cursor');
    }
    const rows = await em.find(
      ReconciliationResult,
      {
        runId,
        organizationId,
        ...(q.check ? { checkKey: q.check } : {}),
        ...(q.status ? { status: q.status } : {}),
        ...(after ? { $or: [{ checkKey: { $gt: after.c } }, { checkKey: after.c, itemKey: { $gt: after.k } }] } : {}),
      },
      { orderBy: { checkKey: 'asc', itemKey: 'asc' }, limit: q.limit + 1 },
    );
    const more = rows.length > q.limit;
    const data = more ? rows.slice(0, q.limit) : rows;
    const last = data[data.length - 1];
    return { data, next_cursor: more && last ? Buffer.from(JSON.stringify({ c: last.checkKey, k: last.itemKey })).toString('base64url') : null };
  }

  private requested(checks?: string[]): CheckKey[] {
    if (checks === undefined) return [...CHECK_KEYS];
    if (!Array.isArray(checks) || checks.length === 0) throw new ValidationError('invalid_value', 'checks must list at least one check', 'checks');
    checks.forEach((c, i) => {
      if (!isCheckKey(c)) throw new ValidationError('invalid_value', `checks[${i}] must be one of ${CHECK_KEYS.join(', ')}`, `checks[${i}]`);
    });
    // Run order is the SPEC's, whatever order they were asked in; duplicates are one.
    return CHECK_KEYS.filter((c) => checks.includes(c));
  }

  private async load(em: EntityManager, runId: string): Promise<ReconciliationRun> {
    const run = await em.findOne(ReconciliationRun, { id: runId }, { refresh: true });
    if (!run) throw new NotFoundError('reconciliation_run', runId);
    return run;
  }

  /** The check's failing results → exceptions (capped per call by ExceptionsService); then auto-resolve the rest. */
  private async recordExceptions(em: EntityManager, run: ReconciliationRun, key: CheckKey, type: RecordManyItem['type']): Promise<NonNullable<CheckCapture['exceptions']>> {
    const out = { created: 0, updated: 0, reopened: 0, summarized: false, auto_resolved: 0 };
    const failing: string[] = [];
    let after = '';
    const all: RecordManyItem[] = [];
    for (;;) {
      const rows = await em.execute<{ item_key: string; expected: string | null; actual: string | null; variance: string | null; currency: string | null; tolerance: unknown; details: unknown; refs: unknown }[]>(
        `select item_key, expected::text, actual::text, variance::text, currency, tolerance, details, refs
         from reconciliation_results where run_id = ? and check_key = ? and status = 'fail' and item_key > ?
         order by item_key collate "C" limit ${EXCEPTION_PAGE}`,
        [run.id, key, after],
      );
      for (const r of rows) {
        failing.push(r.item_key);
        const refs = (typeof r.refs === 'string' ? JSON.parse(r.refs) : r.refs) as Record<string, string | undefined>;
        all.push({
          itemKey: r.item_key,
          type,
          title: titleOf(key, r.item_key, r.expected, r.actual, r.currency),
          currency: r.currency,
          expected: r.expected,
          actual: r.actual,
          variance: r.variance,
          tolerance: (typeof r.tolerance === 'string' ? JSON.parse(r.tolerance) : r.tolerance) as Record<string, unknown>,
          details: (typeof r.details === 'string' ? JSON.parse(r.details) : r.details) as Record<string, unknown>,
          refs: { invoice_id: refs.invoice_id, invoice_line_id: refs.invoice_line_id, subscription_id: refs.subscription_id, customer_id: refs.customer_id },
        });
      }
      if (rows.length < EXCEPTION_PAGE) break;
      after = rows[rows.length - 1].item_key;
    }
    if (all.length) {
      const res = await this.exceptions.recordMany(em, all, { organizationId: run.organizationId, checkKey: key, period: run.period, runId: run.id });
      out.created = res.created;
      out.updated = res.updated;
      out.reopened = res.reopened;
      out.summarized = res.summary !== null;
    }
    const resolved = await this.exceptions.autoResolve(em, { organizationId: run.organizationId, checkKey: key, period: run.period, failingItemKeys: failing, runId: run.id });
    out.auto_resolved = resolved.resolved;
    return out;
  }
}

const TITLES: Record<CheckKey, string> = {
  events_rollups: 'Rollup differs from its events',
  rollups_lines: 'Usage line differs from its rollups or steps',
  invoices_ledger: 'Document and ledger disagree',
  completeness: 'Billing period not invoiced exactly once',
  deferred_revenue: 'Deferred revenue does not roll forward',
  flux: 'Revenue moved more than tolerated',
};

function titleOf(key: CheckKey, item: string, expected: string | null, actual: string | null, currency: string | null): string {
  const unit = currency ? ` ${currency}` : '';
  return `${TITLES[key]}: ${item} (expected ${expected ?? '—'}${unit}, actual ${actual ?? '—'}${unit})`.slice(0, 500);
}
