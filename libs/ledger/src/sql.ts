/**
 * Small SQL helpers shared by the ledger services. Every statement goes through `em.execute`, so
 * it joins whatever transaction the caller's EntityManager is in.
 */
import type { EntityManager } from '@mikro-orm/postgresql';

/** Runs `fn` in the caller's transaction, or in a new one when `em` is not in a transaction. */
export function inTransaction<T>(em: EntityManager, fn: (tx: EntityManager) => Promise<T>): Promise<T> {
  return em.isInTransaction() ? fn(em) : em.transactional((tx) => fn(tx));
}

/** A JSON parameter for `jsonb_to_recordset(?::jsonb)` (bigints as strings, which PostgreSQL casts). */
export function jsonParam(rows: unknown): string {
  return JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
}

/** Timestamps selected as `to_json(col)#>>'{}'` (ISO 8601 with offset) to Dates. */
export function toInstant(v: string | Date | null | undefined): Date | null {
  if (v === null || v === undefined) return null;
  return v instanceof Date ? v : new Date(v);
}

/** The shared per-(organization, month) lock postings take; closing a month takes it exclusively. */
export async function lockPeriodShared(em: EntityManager, organizationId: string, period: string): Promise<void> {
  await em.execute('select ledger_lock_period_shared(?::uuid, ?::text)', [organizationId, period]);
}

/** A cursor over (created_at, id) from the database's own ISO timestamp, so microseconds survive. */
export function rawCursor(createdAt: string, id: string): string {
  return Buffer.from(JSON.stringify({ t: createdAt, id })).toString('base64url');
}
