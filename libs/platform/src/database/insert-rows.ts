import type { EntityClass, EntityData } from '@mikro-orm/core';
import type { EntityManager, Knex } from '@mikro-orm/postgresql';

/**
 * Inserts many rows of an entity's table in one statement, outside the unit of work: the rows travel
 * as one JSON document that `jsonb_populate_recordset` turns into the table's own row type, so every
 * column gets its declared type (numeric from exact decimal text, timestamptz, uuid, jsonb) and the
 * statement has one parameter whatever the number of rows. For set-based writers (a page of
 * invoices and their lines) whose per-row ORM work — change sets, and walking every JSON value to
 * convert it — cost more than the database did. Properties map to columns by the entity's metadata;
 * a column no row names keeps its default. Rows are not validated beyond what the table's types and
 * constraints check, so callers pass complete rows (ids and creation times chosen by them).
 */
export async function insertRows<T extends object>(em: EntityManager, entity: EntityClass<T>, rows: readonly EntityData<T>[]): Promise<void> {
  if (!rows.length) return;
  const meta = em.getMetadata().get<T>(entity.name);
  const columnOf = new Map<string, string>();
  for (const row of rows) {
    for (const prop of Object.keys(row)) {
      if (columnOf.has(prop)) continue;
      const p = (meta.properties as Record<string, { fieldNames?: string[] } | undefined>)[prop];
      if (!p?.fieldNames?.length) throw new Error(`insertRows: ${meta.className} has no column for ${prop}`);
      columnOf.set(prop, p.fieldNames[0]);
    }
  }
  const doc = rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const [prop, value] of Object.entries(row)) out[columnOf.get(prop)!] = value instanceof Date ? value.toISOString() : value;
    return out;
  });
  const cols = [...columnOf.values()].map((c) => `"${c}"`).join(', ');
  const sql = `insert into "${meta.tableName}" (${cols}) select ${cols} from jsonb_populate_recordset(null::"${meta.tableName}", ?::jsonb)`;
  // A bound parameter, not `em.execute`'s inlining: escaping a document of a page of invoices into
  // the SQL text character by character cost more CPU (and garbage) than the insert itself.
  const knex = em.getTransactionContext<Knex.Transaction>() ?? em.getKnex();
  await knex.raw(sql, [JSON.stringify(doc)]);
}
