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
  const doc = rowDocuments(meta.className, columnOf, rows);
  const cols = [...columnOf.values()].map((c) => `"${c}"`).join(', ');
  const sql = `insert into "${meta.tableName}" (${cols}) select ${cols} from jsonb_populate_recordset(null::"${meta.tableName}", ?::jsonb)`;
  // A bound parameter, not `em.execute`'s inlining: escaping a document of a page of invoices into
  // the SQL text character by character cost more CPU (and garbage) than the insert itself.
  const knex = em.getTransactionContext<Knex.Transaction>() ?? em.getKnex();
  await knex.raw(sql, [JSON.stringify(doc)]);
}

/** Top-level instants as ISO text (`jsonb_populate_recordset` reads timestamptz from it); anything else as it is. */
const toDocumentValue = (v: unknown): unknown => (v instanceof Date ? v.toISOString() : v);

type DocumentMapper = (row: object) => Record<string, unknown>;

const documentMappers = new Map<string, DocumentMapper>();
/** Entity × property lists seen; code paths make a handful, so this only guards against a surprise. */
const MAX_DOCUMENT_MAPPERS = 256;

/**
 * A function building a row's document (its values under their column names) for one entity and
 * property list, compiled once into an object literal: a page of invoice lines built this way is
 * ~2× cheaper to build and to stringify than objects filled key by key, which was most of
 * `insertRows`' CPU in the rating benchmark. Every name in the generated code comes from the
 * entity's metadata (each property was checked against it above) and is quoted as a JSON string
 * literal. A property a row lacks is left out of its document, as before (the column gets null).
 */
/** The rows' documents: each row's values under their column names (`columnOf`: property → column). */
export function rowDocuments(entityName: string, columnOf: ReadonlyMap<string, string>, rows: readonly object[]): Record<string, unknown>[] {
  return rows.map(documentMapper(entityName, columnOf));
}

function documentMapper(entityName: string, columnOf: ReadonlyMap<string, string>): DocumentMapper {
  const key = `${entityName}\u0000${[...columnOf.keys()].join('\u0000')}`;
  let mapper = documentMappers.get(key);
  if (!mapper) {
    const fields = [...columnOf].map(([prop, column]) => `${JSON.stringify(column)}: c(r[${JSON.stringify(prop)}])`).join(', ');
    mapper = new Function('c', `return (r) => ({ ${fields} });`)(toDocumentValue) as DocumentMapper;
    if (documentMappers.size >= MAX_DOCUMENT_MAPPERS) documentMappers.clear();
    documentMappers.set(key, mapper);
  }
  return mapper;
}
