import type { WorkbookSheetProvider } from './sheet-registry';

/** 0-based column index → its letters (0 → A, 25 → Z, 26 → AA). */
export function columnLetter(index: number): string {
  let n = index + 1;
  let out = '';
  while (n > 0) {
    const r = (n - 1) % 26;
    out = String.fromCharCode(65 + r) + out;
    n = Math.floor((n - 1) / 26);
  }
  return out;
}

/** A sheet name as a formula reference: always quoted, a quote doubled. */
export const quoteSheet = (name: string) => `'${name.replace(/'/g, "''")}'`;

/** A text literal in a formula. */
export const formulaText = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** Name of part `n` (1-based) of a sheet split past the row limit. */
export const partName = (name: string, n: number) => (n === 1 ? name : `${name} ${n}`);

/**
 * Formula references to the workbook's sheets by column key, for the Summary's live tie-outs. A
 * sheet continued past Excel's row limit ("Ledger entries 2", …) is summed over every part, so a
 * formula stays right whatever the month's size; the parts follow from the exact row counts the
 * writer splits by.
 */
export class SheetRefs {
  private readonly byName: Map<string, { columns: string[]; parts: string[] }>;

  constructor(sheets: readonly WorkbookSheetProvider[], counts: ReadonlyMap<string, number>, maxRowsPerSheet: number) {
    this.byName = new Map(
      sheets.map((s) => {
        const n = counts.get(s.name) ?? 0;
        const parts = Math.max(1, Math.ceil(n / maxRowsPerSheet));
        return [s.name, { columns: s.columns.map((c) => c.key), parts: Array.from({ length: parts }, (_, i) => partName(s.name, i + 1)) }];
      }),
    );
  }

  has(sheet: string): boolean {
    return this.byName.has(sheet);
  }

  /** Whole-column reference of `key` in one part (`'Ledger entries'!$K:$K`). */
  private column(part: string, sheet: string, key: string): string {
    const s = this.byName.get(sheet);
    const i = s ? s.columns.indexOf(key) : -1;
    if (i < 0) throw new Error(`sheet "${sheet}" has no column "${key}"`);
    const l = columnLetter(i);
    return `${quoteSheet(part)}!$${l}:$${l}`;
  }

  /**
   * `SUMIFS` of column `sum` over every part of `sheet`, on rows whose columns equal the criteria
   * (text compared as text: `"1100"`). Null when the sheet is not in the workbook.
   */
  sumifs(sheet: string, sum: string, criteria: Record<string, string>): string | null {
    const s = this.byName.get(sheet);
    if (!s) return null;
    const terms = s.parts.map((part) => {
      const conditions = Object.entries(criteria).flatMap(([key, value]) => [this.column(part, sheet, key), formulaText(value)]);
      return `SUMIFS(${[this.column(part, sheet, sum), ...conditions].join(',')})`;
    });
    return terms.length === 1 ? terms[0] : terms.join('+');
  }

  /** `COUNTIFS` of rows of `sheet` (every part) whose columns equal the criteria. Null when the sheet is absent. */
  countifs(sheet: string, criteria: Record<string, string>): string | null {
    const s = this.byName.get(sheet);
    if (!s) return null;
    const terms = s.parts.map((part) => `COUNTIFS(${Object.entries(criteria).flatMap(([key, value]) => [this.column(part, sheet, key), formulaText(value)]).join(',')})`);
    return terms.length === 1 ? terms[0] : terms.join('+');
  }
}
