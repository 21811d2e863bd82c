import type { EntityManager } from '@mikro-orm/postgresql';
import { ValidationError } from '@closebook/platform';
import type { WorkbookScope } from './sheet-registry';

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** `YYYY-MM` → the month's UTC bounds; a 400 naming `period` otherwise. */
export function periodScope(organizationId: string, period: string): WorkbookScope {
  const m = PERIOD.exec(period);
  if (!m) throw new ValidationError('invalid_period', 'period must be a month as YYYY-MM', 'period');
  const y = Number(m[1]);
  const mo = Number(m[2]) - 1;
  return { organizationId, period, from: new Date(Date.UTC(y, mo, 1)), to: new Date(Date.UTC(y, mo + 1, 1)) };
}

let cursorSeq = 0;

/**
 * Streams a query through a PostgreSQL server-side cursor (`DECLARE … NO SCROLL CURSOR`, then
 * `FETCH FORWARD n`) inside the caller's transaction, one batch (an array of rows) at a time: memory
 * holds two batches whatever the result's size, and the cursor keeps the transaction's snapshot.
 * The next batch is fetched while the consumer writes the current one. `em` must be inside a
 * transaction. Parameters use knex `?` placeholders (MikroORM inlines them, escaped).
 */
export async function* cursorBatches<T = Record<string, unknown>>(em: EntityManager, sql: string, params: unknown[] = [], batch = 5_000): AsyncGenerator<T[]> {
  if (!em.isInTransaction()) throw new Error('cursorBatches needs a transaction (a cursor lives in one)');
  const name = `cb_export_${process.pid}_${++cursorSeq}`;
  await em.execute(`declare ${name} no scroll cursor for ${sql}`, params, 'run');
  const fetch = () => em.execute<T[]>(`fetch forward ${batch} from ${name}`);
  try {
    let pending: Promise<T[]> | null = fetch();
    while (pending) {
      const rows: T[] = await pending;
      pending = rows.length === batch ? fetch() : null;
      // Keep a rejected prefetch from going unhandled while the consumer works; it is awaited above.
      pending?.catch(() => undefined);
      if (rows.length) yield rows;
    }
  } finally {
    await em.execute(`close ${name}`, [], 'run').catch(() => undefined);
  }
}

/** As `cursorBatches`, one row at a time (simpler for providers that transform rows). */
export async function* cursorRows<T = Record<string, unknown>>(em: EntityManager, sql: string, params: unknown[] = [], batch = 5_000): AsyncGenerator<T> {
  for await (const rows of cursorBatches<T>(em, sql, params, batch)) yield* rows;
}

/** One number from a `select … as n` query. */
export async function countOf(em: EntityManager, sql: string, params: unknown[]): Promise<number> {
  const [row] = await em.execute<{ n: string | number }[]>(sql, params);
  return Number(row?.n ?? 0);
}

/** Month bounds as ISO strings, for query parameters. */
export const bounds = (s: WorkbookScope): [string, string] => [s.from.toISOString(), s.to.toISOString()];
