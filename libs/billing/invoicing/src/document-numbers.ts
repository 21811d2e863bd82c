import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';

const PREFIX = { invoice: 'INV', credit_note: 'CN' } as const;

/** The number of a document (INV-000001, CN-000001). */
export const formatDocumentNumber = (kind: keyof typeof PREFIX, n: number): string => `${PREFIX[kind]}-${String(n).padStart(6, '0')}`;

/** The next document number of an organization (INV-000001, CN-000001): an upsert, so concurrent callers never share one. */
export async function nextDocumentNumber(tx: EntityManager, organizationId: string, kind: keyof typeof PREFIX): Promise<string> {
  const [number] = await reserveDocumentNumbers(tx, organizationId, kind, 1);
  return number;
}

/**
 * `count` consecutive document numbers of an organization, in one upsert of its counter row: the
 * row stays locked until the caller's transaction ends, so numbers are gapless (a rollback gives
 * them back) and no two transactions share one. Returned in ascending order.
 */
export async function reserveDocumentNumbers(tx: EntityManager, organizationId: string, kind: keyof typeof PREFIX, count: number): Promise<string[]> {
  if (!Number.isInteger(count) || count < 1) return [];
  const [row] = await tx.execute<{ last: number }[]>(
    `insert into document_sequences (id, organization_id, kind, last, created_at) values (?, ?, ?, ?, now())
     on conflict (organization_id, kind) do update set last = document_sequences.last + excluded.last
     returning last`,
    [randomUUID(), organizationId, kind, count],
  );
  const first = Number(row.last) - count + 1;
  return Array.from({ length: count }, (_, i) => formatDocumentNumber(kind, first + i));
}
