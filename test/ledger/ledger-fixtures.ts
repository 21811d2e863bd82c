import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { LedgerPeriodsService, LedgerService } from '@closebook/ledger';

/** Account ids of an organization's chart in one currency (created on first use). */
export async function accountIds(em: EntityManager, ledger: LedgerService, orgId: string, currency = 'USD'): Promise<Record<string, string>> {
  await ledger.ensureChart(em, orgId, currency);
  const rows = await em.execute<{ code: string; id: string }[]>('select code, id from ledger_accounts where organization_id = ? and currency = ?', [orgId, currency]);
  return Object.fromEntries(rows.map((r) => [r.code, r.id]));
}

export interface RawLine {
  accountId: string;
  debit: bigint;
  credit: bigint;
  partyId?: string | null;
}

/** Inserts an entry with raw SQL through the connection, bypassing the service. */
export async function rawEntry(tx: EntityManager, orgId: string, date: string, currency = 'USD', id = randomUUID()): Promise<string> {
  const conn = tx.getConnection();
  await conn.execute(
    `insert into journal_entries (id, created_at, organization_id, currency, entry_date, key, source_type, source_id, description)
     values (?, now(), ?, ?, ?, ?, 'test', ?, 'raw insert')`,
    [id, orgId, currency, date, `raw:${id}`, id],
    'all',
    tx.getTransactionContext(),
  );
  return id;
}

export async function rawLines(tx: EntityManager, orgId: string, entryId: string, lines: RawLine[], firstLineNo = 1): Promise<void> {
  const conn = tx.getConnection();
  for (const [i, l] of lines.entries()) {
    await conn.execute(
      `insert into journal_lines (id, created_at, organization_id, entry_id, line_no, account_id, party_id, debit, credit)
       values (?, now(), ?, ?, ?, ?, ?, ?, ?)`,
      [randomUUID(), orgId, entryId, firstLineNo + i, l.accountId, l.partyId ?? null, l.debit.toString(), l.credit.toString()],
      'all',
      tx.getTransactionContext(),
    );
  }
}

/** Closes a month through the service (closing, then closed). */
export async function closeMonth(em: EntityManager, periods: LedgerPeriodsService, orgId: string, period: string) {
  await periods.startClosing(em, orgId, period);
  await periods.close(em, orgId, period);
}
