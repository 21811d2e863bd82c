import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Takes the transaction-scoped advisory locks of `keys` in the caller's transaction, waiting for
 * holders, in one statement. Every caller that takes several locks goes through here, so they are
 * all taken in the same order (the keys' byte order) and two takers never deadlock; one key is the
 * same lock as any other taker's of that key (`hashtextextended(key, 0)`). Released at commit or
 * rollback.
 */
export async function lockInOrder(em: EntityManager, keys: readonly string[]): Promise<void> {
  if (!keys.length) return;
  // pg_advisory_xact_lock returns void; ::text makes a row per lock that the client can read.
  await em.execute(
    `select pg_advisory_xact_lock(hashtextextended(k, 0))::text
     from (select distinct k collate "C" as k from jsonb_array_elements_text(?::jsonb) as x(k) order by 1) l`,
    [JSON.stringify(keys)],
  );
}
