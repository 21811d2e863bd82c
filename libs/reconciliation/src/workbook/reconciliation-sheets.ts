import { Injectable, OnModuleInit } from '@nestjs/common';
import { cursorRows, WorkbookSheetRegistry, type WorkbookColumn, type WorkbookSheetProvider, type WorkbookSummaryLine } from '@closebook/traceability';
import { CHECK_KEYS } from '../checks/tolerance';

const col = (header: string, key: string, kind: WorkbookColumn['kind'] = 'text', width = 16): WorkbookColumn => ({ header, key, kind, width });

/**
 * The latest finished result of each check for the month: the run that produced it, per check (a
 * check re-run alone replaces only its own results). What an auditor sees is what the close gate used.
 */
const LATEST_RUNS_CTE = `
latest as (
  select distinct on (k.name) k.name as check_key, r.id as run_id
  from reconciliation_runs r cross join lateral jsonb_array_elements_text(r.checks) as k(name)
  where r.organization_id = ? and r.period = ? and r.status in ('passed', 'failed')
    and r.capture->'checks'->k.name->>'status' in ('passed', 'failed')
  order by k.name, r.finished_at desc, r.created_at desc
)`;

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
       from reconciliation_results x join latest l on l.run_id = x.run_id and l.check_key = x.check_key
       order by x.check_key, x.item_key, x.id`,
      [org, period],
    ),
  async summary(em, org, period): Promise<WorkbookSummaryLine[]> {
    const rows = await em.execute<{ check_key: string; run_id: string; status: string | null; items: string | null; failed: string | null }[]>(
      `with ${LATEST_RUNS_CTE}
       select l.check_key, l.run_id, r.capture->'checks'->l.check_key->>'status' as status,
              r.capture->'checks'->l.check_key->>'items' as items, r.capture->'checks'->l.check_key->>'failed' as failed
       from latest l join reconciliation_runs r on r.id = l.run_id`,
      [org, period],
    );
    const byCheck = new Map(rows.map((r) => [r.check_key, r]));
    return CHECK_KEYS.map((check) => {
      const r = byCheck.get(check);
      return {
        label: `Check ${check}`,
        expected: r ? Number(r.items ?? 0) : null,
        actual: r ? Number(r.items ?? 0) - Number(r.failed ?? 0) : null,
        status: !r ? 'NOT RUN' : r.status === 'passed' ? 'PASS' : 'FAIL',
        detail: r ? `run ${r.run_id}: items checked (expected) and passing (actual)` : 'no finished run for the month',
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
  async summary(em, org, period): Promise<WorkbookSummaryLine[]> {
    const [r] = await em.execute<{ total: string; open: string }[]>(
      `select count(*)::text as total, count(*) filter (where status in ('open', 'assigned'))::text as open from exceptions where organization_id = ? and period = ?`,
      [org, period],
    );
    return [{ label: 'Exceptions still open', expected: 0, actual: Number(r?.open ?? 0), status: Number(r?.open ?? 0) === 0 ? 'PASS' : 'FAIL', detail: `${r?.total ?? 0} exception(s) of the month in all` }];
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
