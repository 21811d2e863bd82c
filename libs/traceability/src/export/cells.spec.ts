import { cellText, decimalCell, MAX_CELL_TEXT, minorToMajor, moneyFormat, minorUnits } from './cells';
import { WorkbookRegistryError, WorkbookSheetRegistry, type WorkbookSheetProvider } from './sheet-registry';

describe('workbook cells', () => {
  it('replaces characters XML 1.0 refuses and keeps the rest (pairs of surrogates included)', () => {
    expect(cellText('a\u0001b\u0007c\tz\n')).toBe('a\uFFFDb\uFFFDc\tz\n');
    expect(cellText('x\uD800y')).toBe('x\uFFFDy');
    expect(cellText('smile \uD83D\uDE00')).toBe('smile \uD83D\uDE00');
  });

  it('cuts text at Excel’s cell limit with a marker', () => {
    const s = cellText('a'.repeat(MAX_CELL_TEXT + 10));
    expect(s.length).toBeLessThanOrEqual(MAX_CELL_TEXT);
    expect(s.endsWith('[truncated]')).toBe(true);
  });

  it('keeps decimals a double cannot hold as text', () => {
    expect(decimalCell('49.00')).toBe(49);
    expect(decimalCell('-0.005')).toBe(-0.005);
    expect(decimalCell('12.000000000000000001')).toBe('12.000000000000000001');
  });

  it('converts ledger minor units with the currency’s exponent', () => {
    expect(minorToMajor('-12345', 'USD')).toBe('-123.45');
    expect(minorToMajor('5', 'JPY')).toBe('5');
    expect(minorToMajor('5', 'KWD')).toBe('0.005');
    expect(minorUnits('XXX?')).toBe(2);
    expect(moneyFormat(0)).toBe('#,##0');
    expect(moneyFormat(3)).toBe('#,##0.000');
  });
});

describe('WorkbookSheetRegistry', () => {
  const sheet = (name: string, order: number, placeholder = false): WorkbookSheetProvider => ({
    name,
    order,
    placeholder,
    columns: [{ header: 'id', key: 'id' }],
    rows: async function* () {
      yield { id: name };
    },
  });

  it('orders sheets, lets a real provider replace a placeholder (either way round), refuses duplicates and bad names', () => {
    const r = new WorkbookSheetRegistry();
    r.register(sheet('Exceptions', 80, true));
    r.register(sheet('Invoices', 10));
    r.register(sheet('Exceptions', 80));
    r.register(sheet('Reconciliation results', 70));
    r.register(sheet('Reconciliation results', 70, true)); // a late placeholder does not displace the provider
    expect(r.sheets().map((s) => [s.name, !!s.placeholder])).toEqual([
      ['Invoices', false],
      ['Reconciliation results', false],
      ['Exceptions', false],
    ]);
    expect(() => r.register(sheet('Invoices', 10))).toThrow(WorkbookRegistryError);
    expect(() => r.register(sheet('Summary', 1))).toThrow(WorkbookRegistryError);
    expect(() => r.register(sheet('a/b', 1))).toThrow(WorkbookRegistryError);
    expect(() => r.register(sheet('x'.repeat(29), 1))).toThrow(WorkbookRegistryError);
  });
});
