import { Injectable, OnModuleInit } from '@nestjs/common';
import { FlushMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { countOf, cursorRows, WorkbookSheetRegistry, type WorkbookColumn, type WorkbookRow, type WorkbookSheetProvider, type WorkbookSummaryLine } from '@closebook/traceability';
import { CloseService, type CloseStatus } from '../close/close.service';
import { LATEST_RUNS_CTE } from './reconciliation-sheets';

const col = (header: string, key: string, kind: WorkbookColumn['kind'] = 'text', width = 16): WorkbookColumn => ({ header, key, kind, width });

/**
 * Every reconciliation run of the month (`period` = the month, whenever it ran), one row per
 * requested check, in the order the runs were created and the checks were requested. `current` says
 * whether the run is the one whose result of the check the close status and the Reconciliation
 * results sheet use (LATEST_RUNS_CTE). Parameters: [organization, period, organization, period].
 */
const CLOSE_RUNS_SQL = `with ${LATEST_RUNS_CTE}
  select r.id as run_id, r.status as run_status, r.started_by, r.created_at, r.started_at, r.finished_at, r.capture_hash,
         k.name as check_key,
         case when c.c is null or c.c->>'status' is null then 'not finished' else c.c->>'status' end as check_status,
         c.c->'population'->>'count' as population_count, c.c->'population'->>'unit' as population_unit,
         c.c->'population'->>'documents' as population_documents, c.c->'population'->>'reason' as population_reason,
         c.c->>'items' as items, c.c->>'passed' as passed, c.c->>'failed' as failed, c.c->>'warned' as warned,
         coalesce(r.inputs_fingerprint->>k.name, c.c->>'fingerprint') as fingerprint, c.c->>'results_hash' as results_hash,
         c.c->>'error' as error,
         case when l.run_id is null then 'no' else 'yes' end as current
  from reconciliation_runs r
  cross join lateral jsonb_array_elements_text(r.checks) with ordinality as k(name, ord)
  left join lateral (select r.capture->'checks'->k.name as c) c on true
  left join latest l on l.run_id = r.id and l.check_key = k.name
  where r.organization_id = ? and r.period = ?
  order by r.created_at, r.id, k.ord`;

export const CLOSE_RUNS_SHEET: WorkbookSheetProvider = {
  name: 'Close runs',
  order: 72,
  columns: [
    col('run_id', 'run_id', 'id', 38),
    col('run_status', 'run_status', 'text', 10),
    col('started_by', 'started_by', 'text', 20),
    col('created_at', 'created_at', 'datetime', 20),
    col('started_at', 'started_at', 'datetime', 20),
    col('finished_at', 'finished_at', 'datetime', 20),
    col('capture_hash', 'capture_hash', 'text', 66),
    col('check', 'check_key', 'text', 18),
    col('check_status', 'check_status', 'text', 14),
    col('population_count', 'population_count', 'number', 12),
    col('population_unit', 'population_unit', 'text', 40),
    col('population_documents', 'population_documents', 'number', 12),
    col('population_reason', 'population_reason', 'text', 40),
    col('items', 'items', 'number', 10),
    col('passed', 'passed', 'number', 10),
    col('failed', 'failed', 'number', 10),
    col('warned', 'warned', 'number', 10),
    col('fingerprint', 'fingerprint', 'text', 66),
    col('results_hash', 'results_hash', 'text', 66),
    col('error', 'error', 'text', 40),
    col('current', 'current', 'text', 8),
  ],
  rows: (em, org, period) => cursorRows(em, CLOSE_RUNS_SQL, [org, period, org, period]),
  count: (em, org, period) =>
    countOf(
      em,
      `select count(*) as n from reconciliation_runs r cross join lateral jsonb_array_elements_text(r.checks) as k(name) where r.organization_id = ? and r.period = ?`,
      [org, period],
    ),
  emptyNote: 'No reconciliation run was started for this month.',
};

/** The rows and figures of the Close trail, read once per export snapshot. */
interface CloseTrail {
  status: CloseStatus;
  rows: WorkbookRow[];
}

type SignOffRow = {
  id: string;
  step: string;
  signer: string;
  signer_role: string;
  signer_key_id: string | null;
  note: string | null;
  created_at: Date | string;
  withdrawn_at: Date | string | null;
  withdrawn_reason: string | null;
  runs: Record<string, string> | string;
};

type PeriodCloseRow = {
  id: string;
  closed_at: Date | string;
  closed_by: string;
  closed_by_key_id: string | null;
  required_sign_offs: unknown;
  sign_offs: { id: string; step: string; signer: string; signed_at: string }[] | string;
  checks: { check: string; status: string | null; run_id: string | null; population: unknown; fingerprint: string | null }[] | string;
  exceptions: unknown;
};

const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);
const iso = (v: Date | string | null): string | null => (v === null ? null : v instanceof Date ? v.toISOString() : new Date(v).toISOString());

/**
 * The close trail of a month: its sign-offs (withdrawn ones included) with their state as the close
 * status derives it, the record of its close, and a last row with the month's state. `em` is the
 * export's snapshot transaction; the status is CloseService.status (a read) on a fork that keeps that
 * transaction (same snapshot) but has its own identity map, so nothing it loads can be flushed by the
 * export's transaction.
 */
async function readTrail(close: CloseService, em: EntityManager, org: string, period: string): Promise<CloseTrail> {
  const fork = em.fork({ keepTransactionContext: true, flushMode: FlushMode.COMMIT });
  const status = await close.status(fork, org, period);
  const given = new Map(status.sign_offs.given.map((g) => [g.id, g]));
  const rows: WorkbookRow[] = [];

  const signOffs = await em.execute<SignOffRow[]>(
    `select id, step, signer, signer_role, signer_key_id, note, created_at, withdrawn_at, withdrawn_reason, runs
     from close_sign_offs where organization_id = ? and period = ? order by created_at, id`,
    [org, period],
  );
  for (const s of signOffs) {
    const g = given.get(s.id);
    // A withdrawn sign-off is history; an active one is valid or stale as the status derives it (a closed
    // month: as its close recorded it — an active sign-off the close did not record did not count).
    const state = s.withdrawn_at !== null ? 'withdrawn' : g ? g.state : status.state === 'closed' ? 'not in the close' : 'unknown';
    rows.push({
      kind: 'sign_off',
      id: s.id,
      step: s.step,
      signer: s.signer,
      signer_role: s.signer_role,
      key_id: s.signer_key_id,
      signed_at: s.created_at,
      withdrawn_at: s.withdrawn_at,
      withdrawn_reason: s.withdrawn_reason,
      state,
      stale_checks: g && g.stale_checks.length ? g.stale_checks.join(', ') : null,
      runs: JSON.stringify(json(s.runs)),
      note: s.note,
    });
  }

  const closes = await em.execute<PeriodCloseRow[]>(
    `select id, closed_at, closed_by, closed_by_key_id, required_sign_offs, sign_offs, checks, exceptions
     from period_closes where organization_id = ? and period = ? order by closed_at, id`,
    [org, period],
  );
  for (const c of closes) {
    const signed = json(c.sign_offs);
    const checks = json(c.checks);
    rows.push({
      kind: 'close',
      id: c.id,
      key_id: c.closed_by_key_id,
      state: 'closed',
      runs: JSON.stringify(Object.fromEntries(checks.map((x) => [x.check, x.run_id]))),
      note: `closed on ${signed.length} sign-off(s): ${signed.map((s) => `${s.step} by ${s.signer}`).join(', ') || 'none'}`,
      closed_by: c.closed_by,
      closed_at: c.closed_at,
      details: JSON.stringify({ required_sign_offs: json(c.required_sign_offs), sign_offs: signed, checks, exceptions: json(c.exceptions) }),
    });
  }
  if (status.state === 'closed' && closes.length === 0 && status.closed) {
    // Closed before closes were recorded: who and when as the status answers it.
    rows.push({
      kind: 'close',
      state: 'closed',
      note: 'closed before closes were recorded (no period_closes row): who and when as the close status gives them',
      closed_by: status.closed.by,
      closed_at: status.closed.at,
    });
  }

  rows.push({
    kind: 'status',
    state: status.state,
    closed_by: status.closed?.by ?? null,
    closed_at: status.closed?.at ?? null,
    blockers: status.blockers.map((b) => b.code).join(', ') || null,
    note: status.blockers.map((b) => b.message).join('; ') || 'nothing blocks the close',
    details: JSON.stringify({
      ledger_status: status.ledger_status,
      closable: status.closable,
      checks: status.checks.map((c) => ({ check: c.check, status: c.status, run_id: c.run_id, fresh: c.fresh, population: c.population })),
      exceptions: { open: status.exceptions.open, assigned: status.exceptions.assigned, escalated: status.exceptions.escalated },
      required_sign_offs: status.sign_offs.required,
    }),
  });
  return { status, rows };
}

/** The summary lines of the Close trail (section Close). */
function trailSummary({ status }: CloseTrail): WorkbookSummaryLine[] {
  const required = status.sign_offs.required;
  const valid = required.filter((r) => status.sign_offs.given.some((g) => g.step === r.step && g.state === 'valid'));
  const perStep = required
    .map((r) => {
      const g = status.sign_offs.given.find((x) => x.step === r.step);
      return g ? `${r.step}: ${g.signer} (${g.state}${g.stale_checks.length ? `: ${g.stale_checks.join(', ')} changed` : ''})` : `${r.step}: missing`;
    })
    .join('; ');
  const codes = status.blockers.map((b) => b.code).join(', ');
  return [
    {
      label: 'Month state',
      expected: null,
      actual: null,
      status: 'INFO',
      format: 'text',
      section: 'Close',
      detail:
        status.state === 'closed' && status.closed
          ? `closed by ${status.closed.by} at ${status.closed.at}`
          : status.state === 'ready'
            ? 'ready: nothing blocks the close'
            : `open: ${codes}`,
    },
    {
      label: 'Sign-offs valid',
      expected: required.length,
      actual: valid.length,
      status: valid.length === required.length ? 'PASS' : 'FAIL',
      format: 'count',
      section: 'Close',
      detail: `${status.state === 'closed' ? 'as the close recorded them; ' : ''}required steps (expected) with a valid sign-off (actual): ${perStep || 'none required'}`,
    },
  ];
}

/**
 * The `Close trail` sheet, reading with CloseService: sign-offs (withdrawn included), the close, the
 * month's state. A month has at most a handful of sign-offs, so its rows are read once per export
 * snapshot (the `em` of rows, count and summary is the same transaction) and kept per `em`.
 */
export function closeTrailSheet(close: CloseService): WorkbookSheetProvider {
  const cache = new WeakMap<EntityManager, Map<string, Promise<CloseTrail>>>();
  const trail = (em: EntityManager, org: string, period: string): Promise<CloseTrail> => {
    let byScope = cache.get(em);
    if (!byScope) cache.set(em, (byScope = new Map()));
    const key = `${org}:${period}`;
    let p = byScope.get(key);
    if (!p) {
      p = readTrail(close, em, org, period);
      // A failed read is not kept (the export fails; a retry reads again).
      p.catch(() => byScope!.delete(key));
      byScope.set(key, p);
    }
    return p;
  };
  return {
    name: 'Close trail',
    order: 74,
    columns: [
      col('kind', 'kind', 'text', 10),
      col('id', 'id', 'id', 38),
      col('step', 'step', 'text', 12),
      col('signer', 'signer', 'text', 24),
      col('signer_role', 'signer_role', 'text', 12),
      col('key_id', 'key_id', 'id', 38),
      col('signed_at', 'signed_at', 'datetime', 20),
      col('withdrawn_at', 'withdrawn_at', 'datetime', 20),
      col('withdrawn_reason', 'withdrawn_reason', 'text', 40),
      col('state', 'state', 'text', 12),
      col('stale_checks', 'stale_checks', 'text', 24),
      col('runs', 'runs', 'json', 50),
      col('note', 'note', 'text', 50),
      col('closed_by', 'closed_by', 'text', 24),
      col('closed_at', 'closed_at', 'datetime', 20),
      col('blockers', 'blockers', 'text', 30),
      col('details', 'details', 'json', 60),
    ],
    async *rows(em, org, period) {
      yield (await trail(em, org, period)).rows;
    },
    count: async (em, org, period) => (await trail(em, org, period)).rows.length,
    summary: async (em, org, period) => trailSummary(await trail(em, org, period)),
    emptyNote: 'No sign-off and no close for this month.',
  };
}

/** Registers the close sheets of the auditor workbook: `Close runs` and `Close trail` (it needs CloseService, hence CloseModule). */
@Injectable()
export class CloseWorkbookSheets implements OnModuleInit {
  private readonly sheets: WorkbookSheetProvider[];

  constructor(
    private readonly registry: WorkbookSheetRegistry,
    close: CloseService,
  ) {
    this.sheets = [CLOSE_RUNS_SHEET, closeTrailSheet(close)];
  }

  onModuleInit(): void {
    for (const sheet of this.sheets) {
      // Imported through several modules of one app, it registers once.
      if (this.registry.get(sheet.name) !== sheet) this.registry.register(sheet);
    }
  }
}
