import { Injectable, OnModuleInit } from '@nestjs/common';
import { countOf, cursorRows, WorkbookSheetRegistry, type WorkbookColumn, type WorkbookSheetProvider, type WorkbookSummaryLine } from '@closebook/traceability';
import { CHECK_KEYS } from '../checks/tolerance';

const col = (header: string, key: string, kind: WorkbookColumn['kind'] = 'text', width = 16): WorkbookColumn => ({ header, key, kind, width });

/**
 * The latest finished result of each check for the month: the run that produced it, per check (a
 * check re-run alone replaces only its own results). What an auditor sees is what the close gate used:
 * the rule of `ReconciliationRunsService.latest` — a finished run (passed or failed) whose capture of
 * the check is passed, failed or not_applicable (a check that compared nothing is a result too), the
 * latest by finish time — with the run id as a last tie-break so every sheet picks the same run.
 * Parameters: [organization, period].
 */
export const LATEST_RUNS_CTE = `
latest as (
  select distinct on (k.name) k.name as check_key, r.id as run_id
  from reconciliation_runs r cross join lateral jsonb_array_elements_text(r.checks) as k(name)
  where r.organization_id = ? and r.period = ? and r.status in ('passed', 'failed')
    and r.capture->'checks'->k.name->>'status' in ('passed', 'failed', 'not_applicable')
  order by k.name, r.finished_at desc, r.created_at desc, r.id desc
)`;

/**
 * Per check, the latest finished run that ran it, whatever its outcome: when its capture of the
 * check is `error`, the close is blocked (`check_error`, CloseService.status) and the Summary says
 * ERROR. Parameters: [organization, period].
 */
const LAST_FINISHED_CTE = `
last_finished as (
  select distinct on (k.name) k.name as check_key, r.id as run_id, r.capture->'checks'->k.name->>'status' as status,
         r.capture->'checks'->k.name->>'error' as error
  from reconciliation_runs r cross join lateral jsonb_array_elements_text(r.checks) as k(name)
  where r.organization_id = ? and r.period = ? and r.finished_at is not null
  order by k.name, r.finished_at desc, r.created_at desc, r.id desc
)`;

const RESULTS_OF_LATEST = `from reconciliation_results x join latest l on l.run_id = x.run_id and l.check_key = x.check_key`;

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

export const RECONCILIATION_RESULTS_SHEET: WorkbookSheetProvider = {
  name: 'Reconciliation results',
  order: 70,
  columns: [
    col('id', 'id', 'id', 38),
    col('run_id', 'run_id', 'id', 38),
    col('check', 'check_key', 'text', 18),
    col('item_key', 'item_key', 'text', 40),
    col('item_type', 'item_type', 'text', 18),
    col('status', 'status', 'text', 8),
    col('expected', 'expected', 'text', 16),
    col('actual', 'actual', 'text', 16),
    col('variance', 'variance', 'text', 16),
    col('currency', 'currency', 'text', 9),
    col('tolerance', 'tolerance', 'json', 30),
    col('details', 'details', 'json', 40),
    col('checked_at', 'created_at', 'datetime', 20),
  ],
  rows: (em, org, period) =>
    cursorRows(
      em,
      `with ${LATEST_RUNS_CTE}
       select x.id, x.run_id, x.check_key, x.item_key, x.item_type, x.status, x.expected::text as expected, x.actual::text as actual,
              x.variance::text as variance, x.currency, x.tolerance, x.details, x.created_at
       ${RESULTS_OF_LATEST}
       order by x.check_key, x.item_key, x.id`,
      [org, period],
    ),
  count: (em, org, period) => countOf(em, `with ${LATEST_RUNS_CTE} select count(*) as n ${RESULTS_OF_LATEST}`, [org, period]),
  /**
   * One line per check: PASS (passed), FAIL (failed), N/A (not_applicable: nothing to compare, never
   * a silent PASS), ERROR (its latest finished run ended it in error) or NOT RUN; expected = the
   * population the check compared, actual = its items passing (not failed).
   */
  async summary(em, org, period): Promise<WorkbookSummaryLine[]> {
    type Row = {
      check_key: string;
      run_id: string | null;
      status: string | null;
      items: string | null;
      failed: string | null;
      warned: string | null;
      pop_count: string | null;
      pop_unit: string | null;
      pop_reason: string | null;
      last_run_id: string | null;
      last_status: string | null;
      last_error: string | null;
    };
    const rows = await em.execute<Row[]>(
      `with ${LATEST_RUNS_CTE}, ${LAST_FINISHED_CTE}
       select coalesce(l.check_key, f.check_key) as check_key, l.run_id, c.c->>'status' as status, c.c->>'items' as items, c.c->>'failed' as failed,
              c.c->>'warned' as warned, c.c->'population'->>'count' as pop_count, c.c->'population'->>'unit' as pop_unit,
              c.c->'population'->>'reason' as pop_reason, f.run_id as last_run_id, f.status as last_status, f.error as last_error
       from latest l
       full join last_finished f on f.check_key = l.check_key
       left join reconciliation_runs r on r.id = l.run_id
       left join lateral (select r.capture->'checks'->l.check_key as c) c on true`,
      [org, period, org, period],
    );
    const byCheck = new Map(rows.map((r) => [r.check_key, r]));
    return CHECK_KEYS.map((check): WorkbookSummaryLine => {
      const r = byCheck.get(check);
      const base = { label: `Check ${check}`, format: 'count' as const, section: 'Close' };
      if (r?.last_status === 'error') {
        const shown = r.run_id ? `; the results shown are run ${r.run_id}'s` : '';
        return {
          ...base,
          expected: r.run_id ? Number(r.items ?? 0) : null,
          actual: r.run_id ? Number(r.items ?? 0) - Number(r.failed ?? 0) : null,
          status: 'ERROR',
          detail: `run ${r.last_run_id} ended the check in error${r.last_error ? `: ${r.last_error}` : ''}${shown}`,
        };
      }
      if (!r?.run_id) return { ...base, expected: null, actual: null, status: 'NOT RUN', detail: 'no finished run of the month has a result for this check' };
      const population = r.pop_count !== null ? `${Number(r.pop_count).toLocaleString('en-US')} ${r.pop_unit ?? 'items'}` : 'not captured';
      const items = Number(r.items ?? 0);
      const failed = Number(r.failed ?? 0);
      const counts = `${plural(items, 'item')} compared, ${failed.toLocaleString('en-US')} failed${r.warned !== null && Number(r.warned) > 0 ? `, ${Number(r.warned).toLocaleString('en-US')} warned` : ''}`;
      // Items compared against items passing: like for like (the population — documents, lines, periods — is in the detail).
      const expected = items;
      if (r.status === 'not_applicable') {
        return {
          ...base,
          expected,
          actual: items - failed,
          status: 'N/A',
          detail: `not applicable: ${r.pop_reason ?? 'nothing to compare'} (run ${r.run_id}; population ${population}; ${counts})`,
        };
      }
      return {
        ...base,
        expected,
        actual: items - failed,
        status: r.status === 'passed' ? 'PASS' : 'FAIL',
        detail: `run ${r.run_id}: population ${population} (expected); ${counts} (actual: items passing)`,
      };
    });
  },
  emptyNote: 'No reconciliation run has finished for this month.',
};

export const EXCEPTIONS_SHEET: WorkbookSheetProvider = {
  name: 'Exceptions',
  order: 80,
  columns: [
    col('id', 'id', 'id', 38),
    col('type', 'type', 'text', 16),
    col('check', 'check_key', 'text', 16),
    col('item_key', 'item_key', 'text', 40),
    col('status', 'status', 'text', 10),
    col('queue', 'queue', 'text', 16),
    col('owner', 'owner', 'text', 16),
    col('escalation_contact', 'escalation_contact', 'text', 20),
    col('escalated', 'escalated', 'text', 9),
    col('expected', 'expected', 'text', 14),
    col('actual', 'actual', 'text', 14),
    col('variance', 'variance', 'text', 14),
    col('currency', 'currency', 'text', 9),
    col('invoice_id', 'invoice_id', 'id', 38),
    col('invoice_line_id', 'invoice_line_id', 'id', 38),
    col('opened_at', 'opened_at', 'datetime', 20),
    col('resolved_at', 'resolved_at', 'datetime', 20),
    col('resolution', 'resolution_kind', 'text', 11),
    col('resolution_note', 'resolution_note', 'text', 40),
    col('evidence', 'evidence', 'json', 40),
    col('title', 'title', 'text', 60),
  ],
  rows: (em, org, period) =>
    cursorRows(
      em,
      `select e.id, e.type, e.check_key, e.item_key, e.status, q.key as queue, q.owner, q.escalation_contact,
              case when e.escalated then 'yes' else 'no' end as escalated,
              e.expected::text as expected, e.actual::text as actual, e.variance::text as variance, e.currency,
              e.invoice_id, e.invoice_line_id, e.opened_at, e.resolved_at, e.resolution_kind, e.resolution_note, e.evidence, e.title
       from exceptions e join exception_queues q on q.id = e.queue_id
       where e.organization_id = ? and e.period = ?
       order by e.opened_at, e.id`,
      [org, period],
    ),
  count: (em, org, period) => countOf(em, `select count(*) as n from exceptions e join exception_queues q on q.id = e.queue_id where e.organization_id = ? and e.period = ?`, [org, period]),
  async summary(em, org, period): Promise<WorkbookSummaryLine[]> {
    const [r] = await em.execute<{ total: string; open: string }[]>(
      `select count(*)::text as total, count(*) filter (where status in ('open', 'assigned'))::text as open from exceptions where organization_id = ? and period = ?`,
      [org, period],
    );
    const open = Number(r?.open ?? 0);
    return [
      {
        label: 'Exceptions still open',
        expected: 0,
        actual: open,
        status: open === 0 ? 'PASS' : 'FAIL',
        detail: `${r?.total ?? 0} exception(s) of the month in all`,
        format: 'count',
        section: 'Close',
      },
    ];
  },
  emptyNote: 'No exception was opened for this month.',
};

/** Registers the reconciliation sheets of the auditor workbook (they replace the export's placeholders). */
@Injectable()
export class ReconciliationWorkbookSheets implements OnModuleInit {
  constructor(private readonly registry: WorkbookSheetRegistry) {}

  onModuleInit(): void {
    for (const sheet of [RECONCILIATION_RESULTS_SHEET, EXCEPTIONS_SHEET]) {
      // Imported through several modules of one app, it registers once.
      if (this.registry.get(sheet.name) !== sheet) this.registry.register(sheet);
    }
  }
}
