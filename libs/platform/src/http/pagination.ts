import { z } from 'zod';
import { ValidationError } from '../errors/domain-error';

/** Cursor pagination over (created_at, id): stable under concurrent inserts, unlike offsets. */
export const paginationQuery = {
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().max(200).optional(),
};

export interface Cursor {
  t: string;
  id: string;
}

export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify({ t: createdAt.toISOString(), id })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): Cursor | undefined {
  if (!cursor) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof parsed?.t === 'string' && typeof parsed?.id === 'string' && !Number.isNaN(Date.parse(parsed.t))) return parsed;
  } catch {
    /* fall through */
  }
  throw new ValidationError('invalid_cursor', 'cursor is not one this API returned', 'cursor');
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** Builds a page from rows fetched with limit + 1. */
export function toPage<R extends { createdAt: Date; id: string }, T>(rows: R[], limit: number, map: (r: R) => T): Page<T> {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return { data: items.map(map), next_cursor: more && last ? encodeCursor(last.createdAt, last.id) : null };
}

/** MikroORM filter for "after this cursor" in (created_at desc, id desc) order. */
export function afterCursor(cursor: Cursor | undefined) {
  if (!cursor) return {};
  const t = new Date(cursor.t);
  return { $or: [{ createdAt: { $lt: t } }, { createdAt: t, id: { $lt: cursor.id } }] };
}

export const pageSchema = <T extends z.ZodType>(item: T) => z.object({ data: z.array(item), next_cursor: z.string().nullable() });
