import { periodScope } from './sql';
import type { WorkbookColumn } from './sheet-registry';

/** Column builders shared by the workbook's sheets: a kind sets the cell's type and number format. */
export const id = (header: string, key: string, width = 38): WorkbookColumn => ({ header, key, width, kind: 'id' });
export const text = (header: string, key: string, width = 16): WorkbookColumn => ({ header, key, width, kind: 'text' });
export const money = (header: string, key: string, width = 14): WorkbookColumn => ({ header, key, width, kind: 'money' });
export const num = (header: string, key: string, width = 12): WorkbookColumn => ({ header, key, width, kind: 'number' });
export const datetime = (header: string, key: string): WorkbookColumn => ({ header, key, width: 20, kind: 'datetime' });
export const date = (header: string, key: string): WorkbookColumn => ({ header, key, width: 12, kind: 'date' });

/** `[org, from, to]` for a month: its UTC bounds as query parameters. */
export function monthParams(organizationId: string, period: string): [string, string, string] {
  const s = periodScope(organizationId, period);
  return [organizationId, s.from.toISOString(), s.to.toISOString()];
}
