import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';

/** How a column's values are shown: money and dates get number formats, JSON and text stay text. */
export type WorkbookColumnKind = 'text' | 'id' | 'money' | 'number' | 'date' | 'datetime' | 'json';

export interface WorkbookColumn {
  header: string;
  /** The key of the row object holding the value. */
  key: string;
  width?: number;
  /** An Excel number format; the default follows `kind` (money `#,##0.00`, datetime `yyyy-mm-dd hh:mm:ss`). */
  numFmt?: string;
  kind?: WorkbookColumnKind;
}

export type WorkbookRow = Record<string, unknown>;

/**
 * A Summary cell: a value, or a live spreadsheet formula (without the leading `=`) over the other
 * sheets with the value Closebook computed for it as its cached result (what a reader that does not
 * recalculate shows; a spreadsheet application recalculates it on load).
 */
export type WorkbookSummaryValue = string | number | null | { formula: string; result: string | number | null };

/** How a Summary line's figures are shown: money in its currency's minor units, a count, or text. */
export type WorkbookSummaryFormat = 'money' | 'count' | 'text';

/**
 * One line of the Summary: a tie-out (PASS/FAIL — with formulas, the status is itself a formula
 * comparing them), a reconciliation check's status (PASS, FAIL, N/A, NOT RUN, ERROR), or a figure (INFO).
 */
export interface WorkbookSummaryLine {
  label: string;
  expected: WorkbookSummaryValue;
  actual: WorkbookSummaryValue;
  status: string;
  /** Free text shown next to the line (how it was computed, the currency...). */
  detail?: string;
  /** Number format of `expected` and `actual` (default: count for integers, money otherwise). */
  format?: WorkbookSummaryFormat;
  /** The currency of a money line (its minor units set the format and the PASS tolerance). */
  currency?: string;
  /** Section shown in the Summary's first column (default `Tie-out`). */
  section?: string;
}

/** Everything a sheet reads with: the export's snapshot transaction, the tenant and the month. */
export interface WorkbookScope {
  organizationId: string;
  /** `YYYY-MM` */
  period: string;
  /** First instant of the month (UTC), inclusive. */
  from: Date;
  /** First instant of the next month (UTC), exclusive. */
  to: Date;
}

/**
 * A sheet of the auditor workbook. `rows` must stream (a server-side cursor or keyset pages) —
 * never load the period into memory; `em` is the export's read-only REPEATABLE READ transaction, so
 * every sheet and the Summary see one snapshot. `count` (optional) gives the exact row count for
 * progress and the Summary; `summary` adds lines to the Summary sheet.
 */
export interface WorkbookSheetProvider {
  name: string;
  /** Position in the workbook (Summary is 0; built-in sheets use 10, 20, … 90). */
  order: number;
  columns: WorkbookColumn[];
  /** Rows, or arrays of rows (a batch costs one await instead of one per row: use it for large sheets). */
  rows(em: EntityManager, organizationId: string, period: string): AsyncIterable<WorkbookRow | WorkbookRow[]>;
  count?(em: EntityManager, organizationId: string, period: string): Promise<number>;
  summary?(em: EntityManager, organizationId: string, period: string): Promise<WorkbookSummaryLine[]>;
  /** Placeholders (built-in "Reconciliation results" and "Exceptions") give way to a real provider of the same name. */
  placeholder?: boolean;
  /** Shown in the sheet's first data row when it has no rows. */
  emptyNote?: string;
}

export class WorkbookRegistryError extends Error {}

/**
 * The sheets of the auditor workbook, in order. Built-in sheets register themselves
 * (`BuiltinWorkbookSheets`); other modules add theirs at module init:
 *
 * ```ts
 * constructor(registry: WorkbookSheetRegistry) { registry.register({ name: 'Reconciliation results', order: 70, columns, rows, summary }); }
 * ```
 *
 * A provider named like a placeholder replaces it; any other duplicate name is an error.
 */
@Injectable()
export class WorkbookSheetRegistry {
  private readonly providers = new Map<string, WorkbookSheetProvider>();

  register(provider: WorkbookSheetProvider): void {
    if (!provider.name || provider.name.length > 28 || /[\\/?*[\]:]/.test(provider.name)) {
      // Excel: at most 31 characters and none of \ / ? * [ ] : — 28 leaves room for a " 99" continuation suffix.
      throw new WorkbookRegistryError(`sheet name "${provider.name}" must be 1-28 characters without \\ / ? * [ ] :`);
    }
    if (provider.name.toLowerCase() === 'summary') throw new WorkbookRegistryError('"Summary" is written by the exporter itself');
    const existing = this.providers.get(provider.name);
    if (existing && !existing.placeholder) {
      if (provider.placeholder) return;
      throw new WorkbookRegistryError(`sheet "${provider.name}" is registered twice`);
    }
    this.providers.set(provider.name, provider);
  }

  /** The sheets in workbook order (by `order`, then name). */
  sheets(): WorkbookSheetProvider[] {
    return [...this.providers.values()].sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
  }

  get(name: string): WorkbookSheetProvider | undefined {
    return this.providers.get(name);
  }
}
