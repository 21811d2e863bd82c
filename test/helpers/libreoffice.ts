// LibreOffice (headless) for the tests: find it, and open a workbook in it the way a user's
// spreadsheet application would — every formula recalculated — then read back what it computed.
//
// Why a profile of our own: LibreOffice's default for OOXML files is "never recalculate" (registry
// org.openoffice.Office.Calc/Formula/Load/OOXMLRecalcMode = 1): it keeps whatever result the file
// caches in <v> and only computes formulas that cache none. A formula written with a wrong cached
// result would then look right. `fullCalcOnLoad="1"` in the file does not change that (LibreOffice 7.4
// ignores it), so each call runs with a fresh throwaway user profile whose registrymodifications.xcu
// sets OOXMLRecalcMode = 0, "always recalculate", and the converted copy carries the computed values.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ExcelJS from 'exceljs';

/** A cell as LibreOffice computed it: formula cells hold their result; errors are `{ error: '#REF!' }`. */
export type RecalculatedValue = number | string | boolean | Date | null | { error: string };

export interface RecalculatedSheet {
  name: string;
  /** `rows[r][c]` is the cell at row r + 1, column c + 1 (A1 is rows[0][0]); empty cells are null. */
  rows: RecalculatedValue[][];
  /** The cells holding formulas, by address ("C5"), with their text as LibreOffice wrote it back
   *  (no leading "="; LibreOffice lower-cases names it cannot resolve, e.g. `'missing sheet'!a1`). */
  formulas: Map<string, string>;
  /** The number format of every cell that has one other than General, by address. */
  numFmts: Map<string, string>;
}

export interface RecalculatedWorkbook {
  /** In workbook order. */
  sheets: Map<string, RecalculatedSheet>;
  /** How long LibreOffice took (start to exit), in ms. */
  officeMs: number;
}

export interface OfficeOptions {
  /** Kill LibreOffice after this long (ms). Default 120 000. */
  timeoutMs?: number;
  /** The soffice binary; default `findOffice()`. */
  office?: string;
  /** 'always' (default) forces a full recalculation on load; 'never' keeps the cached results — a control. */
  recalcMode?: 'always' | 'never';
}

const OFFICE_PATHS = ['/usr/bin/soffice', '/usr/bin/libreoffice', '/usr/lib/libreoffice/program/soffice'];

/** The path of LibreOffice's soffice (or libreoffice), on PATH or where Debian installs it; null if none. */
export function findOffice(): string | null {
  for (const bin of ['soffice', 'libreoffice']) {
    const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
    const found = r.status === 0 ? r.stdout.trim() : '';
    if (found) return found;
  }
  return OFFICE_PATHS.find((p) => existsSync(p)) ?? null;
}

const RECALC_MODE = { always: 0, never: 1 } as const;

function profileXcu(mode: 'always' | 'never'): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>${RECALC_MODE[mode]}</value></prop></item>
</oor:items>
`;
}

/**
 * Converts `input` (a file path, or the bytes of an .xlsx) with LibreOffice headless into a temp dir,
 * under a fresh profile (recalculation forced unless `recalcMode: 'never'`), and hands the converted
 * file to `read`. Everything it created is removed afterwards.
 */
async function convert<T>(input: string | Buffer, target: string, ext: string, opts: OfficeOptions, read: (file: string, ms: number) => Promise<T> | T): Promise<T> {
  const office = opts.office ?? findOffice();
  if (!office) throw new Error('LibreOffice is not installed (no soffice or libreoffice on PATH, nor in /usr/lib/libreoffice/program)');
  const dir = mkdtempSync(join(tmpdir(), 'cb-office-'));
  try {
    const profile = join(dir, 'profile');
    mkdirSync(join(profile, 'user'), { recursive: true });
    writeFileSync(join(profile, 'user', 'registrymodifications.xcu'), profileXcu(opts.recalcMode ?? 'always'));
    let source = input as string;
    if (typeof input !== 'string') {
      source = join(dir, 'workbook.xlsx');
      writeFileSync(source, input);
    }
    const outdir = join(dir, 'out');
    mkdirSync(outdir);
    const args = [
      `-env:UserInstallation=${pathToFileURL(profile).href}`,
      '--headless', '--norestore', '--nolockcheck', '--nodefault', '--nologo',
      '--convert-to', target, '--outdir', outdir, source,
    ];
    const started = Date.now();
    const run = await runOffice(office, args, opts.timeoutMs ?? 120_000);
    const ms = Date.now() - started;
    const out = readdirSync(outdir).find((f) => f.endsWith(`.${ext}`));
    if (run.code !== 0 || !out) {
      throw new Error(
        `LibreOffice did not convert ${typeof input === 'string' ? basename(input) : 'the workbook'} to ${ext} ` +
          `(${run.timedOut ? `killed after ${opts.timeoutMs ?? 120_000} ms` : `exit ${run.code}`}):\n${run.stderr.trim()}\n${run.stdout.trim()}`,
      );
    }
    return await read(join(outdir, out), ms);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runOffice(office: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    // Its own process group, so a timeout kills soffice.bin too, not only the launcher script.
    const child = spawn(office, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start LibreOffice (${office}): ${e.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** A cell's value, formula cells by their (cached = recalculated) result. */
function valueOf(cell: ExcelJS.Cell): RecalculatedValue {
  // For formula cells `cell.value` drops falsy results (0, '', false: exceljs copies only truthy
  // fields), so read `cell.result`, which keeps them.
  return plain(cell.type === ExcelJS.ValueType.Formula ? cell.result : cell.value, cell.address);
}

function plain(v: unknown, address: string): RecalculatedValue {
  if (v === undefined || v === null) return null;
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || v instanceof Date) return v;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.error === 'string') return { error: o.error };
    if (Array.isArray(o.richText)) return (o.richText as { text: string }[]).map((r) => r.text).join('');
    if ('hyperlink' in o) return plain(o.text, address); // { text, hyperlink }
  }
  throw new Error(`cell ${address}: unexpected value ${JSON.stringify(v)}`);
}

async function readWorkbook(file: string, officeMs: number): Promise<RecalculatedWorkbook> {
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.readFile(file);
  const sheets = new Map<string, RecalculatedSheet>();
  for (const ws of wb.worksheets) {
    const sheet: RecalculatedSheet = { name: ws.name, rows: [], formulas: new Map(), numFmts: new Map() };
    const width = ws.columnCount;
    for (let r = 1; r <= ws.rowCount; r++) {
      const row = ws.getRow(r);
      const values: RecalculatedValue[] = [];
      for (let c = 1; c <= width; c++) {
        const cell = row.getCell(c);
        values.push(valueOf(cell));
        if (cell.type === ExcelJS.ValueType.Formula) sheet.formulas.set(cell.address, cell.formula);
        if (cell.numFmt && cell.numFmt !== 'General') sheet.numFmts.set(cell.address, cell.numFmt);
      }
      sheet.rows.push(values);
    }
    sheets.set(ws.name, sheet);
  }
  return { sheets, officeMs };
}

/**
 * Opens the workbook (a path, or its bytes) in LibreOffice headless with every formula recalculated
 * (unless `recalcMode: 'never'`), saves it as .xlsx and returns every cell's computed value, which cells
 * hold formulas, and the number formats. Throws (with LibreOffice's stderr) if it cannot be converted.
 */
export function recalculate(xlsx: string | Buffer, opts: OfficeOptions = {}): Promise<RecalculatedWorkbook> {
  return convert(xlsx, 'xlsx', 'xlsx', opts, readWorkbook);
}

/** A sheet of a recalculated workbook by name; throws, naming the sheets there are, if it has none such. */
export function sheet(wb: RecalculatedWorkbook, name: string): RecalculatedSheet {
  const s = wb.sheets.get(name);
  if (!s) throw new Error(`no sheet "${name}"; the workbook has ${[...wb.sheets.keys()].map((n) => `"${n}"`).join(', ')}`);
  return s;
}

/** Row and column (1-based) of an A1 address ("C5", "$C$5"). */
export function parseAddress(ref: string): { row: number; col: number } {
  const m = /^\$?([A-Z]{1,3})\$?(\d+)$/i.exec(ref.trim());
  if (!m) throw new Error(`not a cell address: ${ref}`);
  const col = [...m[1].toUpperCase()].reduce((n, ch) => n * 26 + ch.charCodeAt(0) - 64, 0);
  return { row: Number(m[2]), col };
}

/** The computed value of one cell ("C5") of a recalculated sheet; null when empty. */
export function cell(s: RecalculatedSheet, ref: string): RecalculatedValue {
  const { row, col } = parseAddress(ref);
  return s.rows[row - 1]?.[col - 1] ?? null;
}

/** Whether a computed value is a spreadsheet error (#REF!, #NAME?, #VALUE!, #DIV/0!, #N/A, …). */
export function isError(v: RecalculatedValue): v is { error: string } {
  return typeof v === 'object' && v !== null && !(v instanceof Date) && typeof v.error === 'string';
}

/** RFC 4180 CSV (quoted fields, doubled quotes, commas and newlines inside quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n') row.push(field), rows.push(row), (row = []), (field = '');
    else if (c !== '\r') field += c;
  }
  if (field || row.length) row.push(field), rows.push(row);
  return rows;
}

/**
 * The first sheet of the workbook (a path, or its bytes) as LibreOffice exports it to CSV — comma,
 * double quote, UTF-8, formulas recalculated (unless `recalcMode: 'never'`) — parsed into rows of text.
 */
export function convertToCsv(xlsx: string | Buffer, opts: OfficeOptions = {}): Promise<string[][]> {
  // CSV filter options: comma (44), double quote (34), UTF-8 (76), from line 1.
  return convert(xlsx, 'csv:Text - txt - csv (StarCalc):44,34,76,1', 'csv', opts, (file) => parseCsv(readFileSync(file, 'utf8')));
}
