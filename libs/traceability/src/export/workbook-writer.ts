import { once } from 'node:events';
import type { Writable } from 'node:stream';
import ExcelJS from 'exceljs';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { ExportSheetCount } from './export.entity';
import { cellText, DATE_FORMAT, DATETIME_FORMAT, decimalCell, minorUnits, moneyFormat } from './cells';
import { columnLetter, partName } from './formula-refs';
import type { WorkbookColumn, WorkbookScope, WorkbookSheetProvider, WorkbookSummaryLine, WorkbookSummaryValue } from './sheet-registry';

export { partName } from './formula-refs';

/** Excel's last row is 1,048,576; one is the header. */
export const EXCEL_MAX_DATA_ROWS = 1_048_575;

export interface WorkbookProgress {
  written: number;
  estimated: number;
  sheet: string;
}

export interface WriteWorkbookOptions {
  /** Data rows per sheet before a sheet continues on "<name> 2", "<name> 3"… */
  maxRowsPerSheet: number;
  /** Report progress every this many rows (and at the end of each sheet). */
  progressEvery: number;
  onProgress?: (p: WorkbookProgress) => unknown;
}

export interface WorkbookContent {
  scope: WorkbookScope;
  exportId: string;
  generatedAt: Date;
  sheets: WorkbookSheetProvider[];
  /** Exact row count per sheet name (when the provider can count), for progress and the Summary. */
  counts: Map<string, number>;
  summary: WorkbookSummaryLine[];
}

type Style = Partial<ExcelJS.Style>;

// One style object per format, shared by every cell: exceljs caches a style's id by object
// identity, so a shared object costs one lookup per cell instead of a serialisation.
const STYLES = new Map<string, Style>();
function styleFor(numFmt: string | undefined): Style {
  const key = numFmt ?? '';
  let s = STYLES.get(key);
  if (!s) {
    s = numFmt ? { numFmt } : {};
    STYLES.set(key, s);
  }
  return s;
}
const HEADER_STYLE: Style = { font: { bold: true }, fill: { type: 'pattern', pattern: 'solid', fgColor: { argb: 'FFE7ECF3' } } };
const NOTE_STYLE: Style = { font: { italic: true, color: { argb: 'FF666666' } } };
const PASS_STYLE: Style = { font: { bold: true, color: { argb: 'FF1E7B34' } } };
const FAIL_STYLE: Style = { font: { bold: true, color: { argb: 'FFC0392B' } } };

function defaultFormat(col: WorkbookColumn): string | undefined {
  if (col.numFmt) return col.numFmt;
  switch (col.kind) {
    case 'money':
      return moneyFormat(2);
    case 'datetime':
      return DATETIME_FORMAT;
    case 'date':
      return DATE_FORMAT;
    default:
      return undefined;
  }
}

/** A formula value `{formula, result}` (a row's own formula, or a Summary tie-out). */
function isFormula(v: unknown): v is { formula: string; result: unknown } {
  return typeof v === 'object' && v !== null && typeof (v as { formula?: unknown }).formula === 'string';
}

/**
 * A row value as a cell value: dates as Excel dates, decimals as numbers, ids and JSON as text. A
 * formula keeps its text (`{key}` tokens already resolved) and shows `result` until recalculated.
 */
function cellValue(col: WorkbookColumn, v: unknown): ExcelJS.CellValue {
  if (v === null || v === undefined) return null;
  if (isFormula(v)) {
    const result = v.result === null || v.result === undefined ? undefined : cellValue(col, v.result);
    return { formula: v.formula, ...(result === undefined || result === null ? {} : { result: result as number | string }) } as ExcelJS.CellFormulaValue;
  }
  switch (col.kind) {
    case 'money':
    case 'number':
      if (typeof v === 'number' || typeof v === 'bigint') return Number(v);
      return decimalCell(String(v));
    case 'date':
      // A calendar date (`YYYY-MM-DD`) as midnight UTC: Excel dates have no zone.
      if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v)) return new Date(`${v}T00:00:00Z`);
      return v instanceof Date ? v : cellText(String(v));
    case 'datetime':
      if (v instanceof Date) return v;
      return typeof v === 'string' && !Number.isNaN(Date.parse(v)) ? new Date(v) : cellText(String(v));
    case 'json':
      return cellText(typeof v === 'string' ? v : JSON.stringify(v));
    default:
      if (v instanceof Date) return v.toISOString();
      return cellText(typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
}

export const SUMMARY_COLUMNS: WorkbookColumn[] = [
  { header: 'section', key: 'section', width: 16, kind: 'text' },
  { header: 'item', key: 'item', width: 70, kind: 'text' },
  { header: 'expected', key: 'expected', width: 18, kind: 'number' },
  { header: 'actual', key: 'actual', width: 18, kind: 'number' },
  { header: 'status', key: 'status', width: 10, kind: 'text' },
  { header: 'detail', key: 'detail', width: 90, kind: 'text' },
];

const COUNT_FORMAT = '#,##0';

/** A Summary line's number format: money in its currency's minor units, counts as integers. */
function summaryFormat(line: WorkbookSummaryLine): string {
  if (line.format === 'count') return COUNT_FORMAT;
  if (line.format === 'money') return moneyFormat(minorUnits(line.currency ?? 'USD'));
  const values = [line.expected, line.actual].map((v) => (isFormula(v) ? v.result : v));
  const integral = values.every((v) => v === null || (typeof v === 'number' && Number.isInteger(v)) || (typeof v === 'string' && /^-?\d+$/.test(v)));
  return integral ? COUNT_FORMAT : moneyFormat(minorUnits(line.currency ?? 'USD'));
}

/** Half the line's smallest unit: what PASS allows between two formulas (sums of doubles carry float noise). */
function summaryTolerance(line: WorkbookSummaryLine): string {
  if (summaryFormat(line) === COUNT_FORMAT) return '0.5';
  return (0.5 / 10 ** minorUnits(line.currency ?? 'USD')).toString();
}

function summaryValue(v: WorkbookSummaryValue): ExcelJS.CellValue {
  if (v === null) return null;
  return cellValue(SUMMARY_COLUMNS[2], v);
}

/** A row's own formula: each `{key}` becomes that column's cell in row `row` (`{opening}` → `B2`). */
function rowFormula(formula: string, letters: ReadonlyMap<string, string>, row: number): string {
  return formula.replace(/\{([a-z0-9_]+)\}/g, (token, key: string) => {
    const l = letters.get(key);
    if (!l) throw new Error(`formula ${formula} names no column of its sheet: ${token}`);
    return `${l}${row}`;
  });
}

/** Rows between two checks of the zip's backlog. */
const DRAIN_EVERY = 500;
/** Bytes of sheet XML allowed to wait for the compressor before the writer pauses. */
const MAX_BACKLOG = 2 ** 20;

/**
 * Backpressure: exceljs writes a sheet's XML into the zip entry without waiting (its stream buffer
 * ignores `write()`'s answer), so a writer faster than deflate would buffer the whole sheet. The
 * entry's first writable is the only place the backlog shows; wait for it to drain.
 */
async function drained(ws: ExcelJS.Worksheet): Promise<void> {
  // archiver wraps the entry in a readable-stream v2 PassThrough: its backlog is `_writableState.length`.
  const dest = (ws as unknown as { stream?: { pipes?: (Writable & { _writableState?: { length: number } })[] } }).stream?.pipes?.[0];
  const backlog = dest ? (dest._writableState?.length ?? dest.writableLength ?? 0) : 0;
  if (dest && backlog > MAX_BACKLOG) await once(dest, 'drain');
}

/**
 * Writes the auditor workbook with exceljs' streaming writer: rows are committed as they come
 * and each sheet is committed before the next starts (the zip takes entries one after another, so a
 * second open sheet would buffer in memory). Memory holds one cursor batch and exceljs' buffers,
 * whatever the period's size.
 */
export async function writeWorkbook(
  em: EntityManager,
  filename: string,
  content: WorkbookContent,
  opts: WriteWorkbookOptions,
): Promise<{ sheets: ExportSheetCount[]; rows: number }> {
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ filename, useStyles: true, useSharedStrings: false });
  wb.creator = 'Closebook';
  wb.created = content.generatedAt;
  const estimated = [...content.counts.values()].reduce((a, b) => a + b, 0);
  const counts: ExportSheetCount[] = [];
  let written = 0;
  let sinceReport = 0;
  const report = async (sheet: string) => {
    sinceReport = 0;
    if (opts.onProgress) await opts.onProgress({ written, estimated, sheet });
  };

  const open = (name: string, columns: WorkbookColumn[]) => {
    const ws = wb.addWorksheet(name, { views: [{ state: 'frozen', ySplit: 1, xSplit: 0, topLeftCell: 'A2', activeCell: 'A2' }] });
    ws.columns = columns.map((c) => ({ key: c.key, width: c.width ?? 16 }));
    const header = ws.addRow(columns.map((c) => c.header));
    header.eachCell((cell) => (cell.style = HEADER_STYLE));
    header.commit();
    return ws;
  };
  const close = (ws: ExcelJS.Worksheet, columns: number, lastRow: number) => {
    ws.autoFilter = { from: { row: 1, column: 1 }, to: { row: Math.max(1, lastRow), column: columns } };
    ws.commit();
  };

  // Summary first (computed before any sheet is written, in the same snapshot).
  {
    const ws = open('Summary', SUMMARY_COLUMNS);
    const meta: [string, string][] = [
      ['Organization', content.scope.organizationId],
      ['Period', `${content.scope.period} (${content.scope.from.toISOString()} – ${content.scope.to.toISOString()}, UTC)`],
      ['Export id', content.exportId],
      ['Generated at', content.generatedAt.toISOString()],
      ['Snapshot', 'every sheet and figure is read in one REPEATABLE READ transaction'],
    ];
    let r = 1;
    for (const [item, detail] of meta) {
      ws.addRow(['Workbook', item, null, null, 'INFO', detail]).commit();
      r++;
    }
    for (const line of content.summary) {
      const rowNumber = r + 1;
      const live = isFormula(line.expected) || isFormula(line.actual);
      // A live tie-out's status is itself a formula: PASS while the two sides agree, whatever is edited.
      const status: ExcelJS.CellValue = live
        ? { formula: `IF(ABS(C${rowNumber}-D${rowNumber})<${summaryTolerance(line)},"PASS","FAIL")`, result: line.status }
        : line.status;
      const row = ws.addRow([
        line.section ?? 'Tie-out',
        cellText(line.label),
        summaryValue(line.expected),
        summaryValue(line.actual),
        status,
        line.detail ? cellText(line.detail) : null,
      ]);
      const format = styleFor(summaryFormat(line));
      row.getCell(3).style = format;
      row.getCell(4).style = format;
      if (line.status === 'PASS') row.getCell(5).style = PASS_STYLE;
      if (line.status === 'FAIL') row.getCell(5).style = FAIL_STYLE;
      row.commit();
      r++;
    }
    for (const sheet of content.sheets) {
      const n = content.counts.get(sheet.name);
      const parts = n === undefined ? 1 : Math.max(1, Math.ceil(n / opts.maxRowsPerSheet));
      const where = parts > 1 ? `continued on ${parts} sheets: ${Array.from({ length: parts }, (_, i) => partName(sheet.name, i + 1)).join(', ')}` : sheet.placeholder ? 'no provider registered' : null;
      const row = ws.addRow(['Sheet', sheet.name, null, n ?? null, 'INFO', where]);
      row.getCell(4).style = styleFor(COUNT_FORMAT);
      row.commit();
      r++;
    }
    close(ws, SUMMARY_COLUMNS.length, r);
    counts.push({ name: 'Summary', rows: r - 1 });
  }

  for (const sheet of content.sheets) {
    const cols = sheet.columns;
    const formats = cols.map((c) => styleFor(defaultFormat(c)));
    const moneyCols = cols.map((c, i) => (c.kind === 'money' && !c.numFmt ? i : -1)).filter((i) => i >= 0);
    const tokens = new Map(cols.map((c, i) => [c.key, columnLetter(i)]));
    let part = 1;
    let ws = open(partName(sheet.name, part), cols);
    let inPart = 0;
    let total = 0;
    for await (const item of sheet.rows(em, content.scope.organizationId, content.scope.period)) {
      const batch = Array.isArray(item) ? item : [item];
      for (const data of batch) {
        if (inPart === opts.maxRowsPerSheet) {
          close(ws, cols.length, inPart + 1);
          counts.push({ name: partName(sheet.name, part), rows: inPart });
          part++;
          ws = open(partName(sheet.name, part), cols);
          inPart = 0;
        }
        const values = new Array<ExcelJS.CellValue>(cols.length);
        for (let i = 0; i < cols.length; i++) {
          const v = data[cols[i].key];
          values[i] = cellValue(cols[i], isFormula(v) ? { ...v, formula: rowFormula(v.formula, tokens, inPart + 2) } : v);
        }
        const row = ws.addRow(values);
        for (let i = 0; i < cols.length; i++) if (values[i] !== null) row.getCell(i + 1).style = formats[i];
        if (moneyCols.length && data.currency !== undefined) {
          const units = minorUnits(data.currency);
          if (units !== 2) for (const i of moneyCols) row.getCell(i + 1).style = styleFor(moneyFormat(units));
        }
        row.commit();
        inPart++;
        total++;
        written++;
        if (inPart % DRAIN_EVERY === 0) await drained(ws);
        if (++sinceReport >= opts.progressEvery) await report(sheet.name);
      }
    }
    if (total === 0 && sheet.emptyNote) {
      const note = ws.addRow([cellText(sheet.emptyNote)]);
      note.getCell(1).style = NOTE_STYLE;
      note.commit();
      close(ws, cols.length, 2);
    } else close(ws, cols.length, inPart + 1);
    counts.push({ name: partName(sheet.name, part), rows: inPart });
    await report(sheet.name);
  }

  await wb.commit();
  return { sheets: counts, rows: written };
}
