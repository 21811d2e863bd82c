import { Injectable } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json';

export type Claim =
  | { kind: 'claimed' }
  | { kind: 'replay'; status: number; body: unknown }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' };

export function requestHash(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body ?? null)}`).digest('hex');
}

/**
 * Claims an Idempotency-Key before the handler runs. The claim is an INSERT … ON CONFLICT DO NOTHING
 * on (organization, key), committed on its own, so of two concurrent requests exactly one runs.
 */
@Injectable()
export class IdempotencyService {
  constructor(private readonly orm: MikroORM) {}

  private get conn() {
    return this.orm.em.getConnection();
  }

  async claim(organizationId: string, key: string, hash: string, method: string, path: string): Promise<Claim> {
    const inserted = await this.conn.execute<{ key: string }[]>(
      `insert into idempotency_keys (organization_id, key, request_hash, method, path, state, created_at)
       values (?, ?, ?, ?, ?, 'in_progress', now())
       on conflict (organization_id, key) do nothing returning key`,
      [organizationId, key, hash, method, path],
    );
    if (inserted.length === 1) return { kind: 'claimed' };
    const [row] = await this.conn.execute<{ request_hash: string; state: string; response_status: number | null; response_body: unknown }[]>(
      `select request_hash, state, response_status, response_body from idempotency_keys where organization_id = ? and key = ?`,
      [organizationId, key],
    );
    if (!row) return this.claim(organizationId, key, hash, method, path); // released between the two statements
    if (row.request_hash !== hash) return { kind: 'mismatch' };
    if (row.state === 'completed') return { kind: 'replay', status: row.response_status ?? 200, body: row.response_body };
    return { kind: 'in_progress' };
  }

  async complete(organizationId: string, key: string, status: number, body: unknown): Promise<void> {
    await this.conn.execute(
      `update idempotency_keys set state = 'completed', response_status = ?, response_body = ?::jsonb, completed_at = now()
       where organization_id = ? and key = ?`,
      [status, JSON.stringify(body ?? null), organizationId, key],
    );
  }

  /** A request that failed with a 5xx changed nothing (its transaction rolled back): let a retry run. */
  async release(organizationId: string, key: string): Promise<void> {
    await this.conn.execute(`delete from idempotency_keys where organization_id = ? and key = ? and state = 'in_progress'`, [organizationId, key]);
  }

  /** Keys are kept 24 hours, like the retry horizon of the clients that send them. */
  async purgeOlderThan(hours: number): Promise<number> {
    const res = await this.conn.execute<{ key: string }[]>(
      `delete from idempotency_keys where created_at < now() - (? || ' hours')::interval returning key`,
      [String(hours)],
    );
    return res.length;
  }
}
