import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';

const PREFIX = { invoice: 'INV', credit_note: 'CN' } as const;

/** The next document number of an organization (INV-000001, CN-000001): an upsert, so concurrent callers never share one. */
export async function nextDocumentNumber(tx: EntityManager, organizationId: string, kind: keyof typeof PREFIX): Promise<string> {
  const [row] = await tx.execute<{ last: number }[]>(
    `insert into document_sequences (id, organization_id, kind, last, created_at) values (?, ?, ?, 1, now())
     on conflict (organization_id, kind) do update set last = document_sequences.last + 1
     returning last`,
    [randomUUID(), organizationId, kind],
  );
  return `${PREFIX[kind]}-${String(row.last).padStart(6, '0')}`;
}
