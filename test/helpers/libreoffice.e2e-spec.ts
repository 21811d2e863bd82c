// The LibreOffice test helper (test/helpers/libreoffice.ts): a workbook written by exceljs — formula
// cells with deliberately wrong cached results, and some with none — comes back from LibreOffice with
// every formula recalculated; the same workbook under LibreOffice's default "never recalculate" keeps
// the wrong results, which is what shows the recalculation is forced by the helper's profile. Also a
// formula written by exceljs's streaming writer (as the exporter writes them), and the CSV conversion.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { cell, convertToCsv, findOffice, isError, parseAddress, recalculate, sheet, type RecalculatedWorkbook } from './libreoffice';

const office = findOffice();
const officeDescribe = office ? describe : describe.skip;
if (!office) console.warn('[libreoffice] LibreOffice is not installed (no soffice or libreoffice on PATH): skipping the tests that recalculate workbooks in it');

const USD = `SUMIFS('Data sheet'!C:C,'Data sheet'!B:B,"USD")`;
const MONEY = '#,##0.00';

/** Two sheets: "Data sheet" (amounts by currency) and a Summary of formulas over it. */
async function workbook(): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  const data = wb.addWorksheet('Data sheet');
  data.addRow(['id', 'currency', 'amount']);
  for (const [id, currency, amount] of [[1, 'USD', 10.5], [2, 'EUR', 7], [3, 'USD', 4.25], [4, 'USD', 0.1]] as const) {
    data.addRow([id, currency, amount]).getCell(3).numFmt = MONEY;
  }
  const s = wb.addWorksheet('Summary');
  s.addRow(['item', 'expected', 'actual', 'check', 'status']);
  // Row 2: ties out. Cached results wrong (999, "FAIL") or absent.
  s.getCell('A2').value = 'USD total';
  s.getCell('B2').value = 14.85;
  s.getCell('C2').value = { formula: USD, result: 999 };
  s.getCell('D2').value = { formula: `'Data sheet'!C2+'Data sheet'!C4+'Data sheet'!C5` }; // no cached result
  s.getCell('E2').value = { formula: 'IF(ABS(C2-D2)<0.005,"PASS","FAIL")', result: 'FAIL' };
  // Row 3: does not tie out, though the cached status says PASS.
  s.getCell('A3').value = 'EUR total';
  s.getCell('C3').value = { formula: `SUMIFS('Data sheet'!C:C,'Data sheet'!B:B,"EUR")`, result: 999 };
  s.getCell('D3').value = 7.01;
  s.getCell('E3').value = { formula: 'IF(ABS(C3-D3)<0.005,"PASS","FAIL")', result: 'PASS' };
  // Row 4: a currency with no rows sums to 0 (a falsy result exceljs would drop from cell.value).
  s.getCell('A4').value = 'GBP total';
  s.getCell('C4').value = { formula: `SUMIFS('Data sheet'!C:C,'Data sheet'!B:B,"GBP")`, result: 999 };
  // Row 5: no cached result; a count over a whole column.
  s.getCell('A5').value = 'USD rows';
  s.getCell('C5').value = { formula: `COUNTIFS('Data sheet'!B:B,"USD")` };
  // Row 6: errors (cached 5) — a sheet that does not exist, text in arithmetic, a deleted reference, and
  // a sheet that does not exist looked up at run time.
  s.getCell('A6').value = 'errors';
  s.getCell('B6').value = { formula: `'No such sheet'!C2`, result: 5 };
  s.getCell('C6').value = { formula: `'Data sheet'!B2+1`, result: 5 };
  s.getCell('D6').value = { formula: 'SUM(#REF!)', result: 5 }; // what Excel leaves of a reference to a deleted sheet
  s.getCell('E6').value = { formula: `INDIRECT("'No such sheet'!C2")`, result: 5 };
  for (const ref of ['B2', 'C2', 'D2', 'C3', 'D3', 'C4']) s.getCell(ref).numFmt = MONEY;
  return Buffer.from((await wb.xlsx.writeBuffer()) as ArrayBuffer);
}

officeDescribe('LibreOffice recalculation helper', () => {
  let wb: RecalculatedWorkbook;

  beforeAll(async () => {
    wb = await recalculate(await workbook());
  }, 150_000);

  it('recalculates every formula: the wrong cached results are replaced, the absent ones computed', () => {
    expect([...wb.sheets.keys()]).toEqual(['Data sheet', 'Summary']);
    const s = sheet(wb, 'Summary');
    expect(cell(s, 'C2')).toBeCloseTo(14.85, 10); // was 999
    expect(cell(s, 'D2')).toBeCloseTo(14.85, 10); // had none
    expect(cell(s, 'E2')).toBe('PASS'); // was "FAIL"
    expect(cell(s, 'C3')).toBe(7); // was 999
    expect(cell(s, 'E3')).toBe('FAIL'); // was "PASS"
    expect(cell(s, 'C4')).toBe(0); // was 999
    expect(cell(s, 'C5')).toBe(3);
    expect(s.rows[1]).toEqual(['USD total', 14.85, expect.closeTo(14.85, 10), expect.closeTo(14.85, 10), 'PASS']);
  });

  it('gives error values as { error }, a reference to a missing sheet among them', () => {
    const s = sheet(wb, 'Summary');
    // LibreOffice reads a reference to a sheet the file does not have as an unknown name: #NAME? (and
    // writes the formula back lower-cased); Excel would not open it as is.
    expect(cell(s, 'B6')).toEqual({ error: expect.stringMatching(/^#(REF!|NAME\?)$/) });
    expect(cell(s, 'C6')).toEqual({ error: '#VALUE!' });
    expect(cell(s, 'D6')).toEqual({ error: '#REF!' });
    expect(cell(s, 'E6')).toEqual({ error: '#REF!' });
    expect(isError(cell(s, 'B6'))).toBe(true);
    expect(isError(cell(s, 'C2'))).toBe(false);
  });

  it('says which cells hold formulas, keeps literals as they are and money cells as formatted numbers', () => {
    const s = sheet(wb, 'Summary');
    expect(s.formulas.get('C2')).toBe(USD);
    expect(s.formulas.get('E2')).toBe('IF(ABS(C2-D2)<0.005,"PASS","FAIL")');
    expect(s.formulas.has('B2')).toBe(false);
    expect(s.formulas.has('A2')).toBe(false);
    expect([...s.formulas.keys()].sort()).toEqual(['B6', 'C2', 'C3', 'C4', 'C5', 'C6', 'D2', 'D6', 'E2', 'E3', 'E6']);
    const data = sheet(wb, 'Data sheet');
    expect(data.rows).toEqual([
      ['id', 'currency', 'amount'],
      [1, 'USD', 10.5],
      [2, 'EUR', 7],
      [3, 'USD', 4.25],
      [4, 'USD', 0.1],
    ]);
    expect(data.formulas.size).toBe(0);
    for (const ref of ['C2', 'C3', 'C4', 'C5']) expect({ ref, numFmt: data.numFmts.get(ref) }).toEqual({ ref, numFmt: MONEY });
    expect(s.numFmts.get('C2')).toBe(MONEY);
    expect(typeof cell(s, 'C2')).toBe('number');
    expect(cell(s, 'Z99')).toBeNull();
    expect(() => sheet(wb, 'Nope')).toThrow(/"Data sheet", "Summary"/);
    expect(parseAddress('$AB$12')).toEqual({ row: 12, col: 28 });
  });

  it("is what forces it: under LibreOffice's default (never recalculate) the wrong cached results stay", async () => {
    const control = sheet(await recalculate(await workbook(), { recalcMode: 'never' }), 'Summary');
    expect(cell(control, 'C2')).toBe(999);
    expect(cell(control, 'E2')).toBe('FAIL');
    expect(cell(control, 'B6')).toBe(5);
    expect(cell(control, 'D6')).toBe(5);
    // A formula caching no result is computed either way.
    expect(cell(control, 'D2')).toBeCloseTo(14.85, 10);
  }, 150_000);

  it("recalculates formulas written by exceljs's streaming writer (as the exporter writes them, without results)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cb-lo-stream-'));
    try {
      const file = join(dir, 'streamed.xlsx');
      const writer = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: file, useSharedStrings: true, useStyles: true });
      const data = writer.addWorksheet('Data sheet');
      data.addRow(['id', 'currency', 'amount']).commit();
      for (const [id, currency, amount] of [[1, 'USD', 10.5], [2, 'EUR', 7], [3, 'USD', 4.25]] as const) {
        const row = data.addRow([id, currency, amount]);
        row.getCell(3).numFmt = MONEY;
        row.commit();
      }
      await data.commit();
      const summary = writer.addWorksheet('Summary');
      summary.addRow(['item', 'expected', 'actual', 'status']).commit();
      const row = summary.addRow(['USD total', 14.75, { formula: USD }, { formula: 'IF(ABS(B2-C2)<0.005,"PASS","FAIL")' }]);
      row.getCell(3).numFmt = MONEY;
      row.commit();
      await summary.commit();
      await writer.commit();

      const back = await recalculate(file);
      const s = sheet(back, 'Summary');
      expect(s.rows[1]).toEqual(['USD total', 14.75, 14.75, 'PASS']);
      expect(s.formulas.get('C2')).toBe(USD);
      expect(s.numFmts.get('C2')).toBe(MONEY);
      expect(sheet(back, 'Data sheet').rows[3]).toEqual([3, 'USD', 4.25]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  it('converts the first sheet to CSV (recalculated too), and throws with the reason on a file it cannot open', async () => {
    const rows = await convertToCsv(await workbook());
    expect(rows).toEqual([['id', 'currency', 'amount'], ['1', 'USD', '10.50'], ['2', 'EUR', '7.00'], ['3', 'USD', '4.25'], ['4', 'USD', '0.10']]);
    await expect(recalculate(join(tmpdir(), 'cb-no-such-workbook.xlsx'))).rejects.toThrow(/LibreOffice did not convert cb-no-such-workbook\.xlsx/);
  }, 150_000);
});
