import { Logger } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Client as PgClient } from 'pg';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { copyField, copyJsonField, encodeLines, textArrayLiteral, withoutLines, type CopyLines } from './copy-format';
import { customerSpans } from './customer-spans';
import { InFlightKeys, type BatchClaim } from './in-flight-keys';
import type { PropertyValue } from './event-validation';
import { UsagePartitions } from './partitions';

/** An event ready to store: valid, its customer resolved, first of its event_id in the batch. */
export interface EventRow {
  eventId: string;
  /** The customer's uuid. */
  customerId: string;
  eventName: string;
  /** The client's ISO 8601 string (PostgreSQL keeps its microseconds). */
  timestamp: string;
  ms: number;
  properties: Record<string, PropertyValue>;
}

/**
 * Step 1: the key table decides which events are new. ON CONFLICT DO NOTHING on the primary key
 * (organization_id, event_id): an id another transaction is inserting makes this one wait for its
 * outcome, then counts as a duplicate (or is inserted if that transaction rolled back). The ids come
 * as two array literals (parsed several times faster than one jsonb document); the answer is the
 * 1-based positions of the ids that were NOT inserted — the duplicates, a few, where returning the
 * new ids would ship and parse thousands of rows.
 * (Measured and dropped: NOT EXISTS plus a plain insert instead of ON CONFLICT, with a retry on
 * 23505 — no difference in the benchmark.)
 */
export const INSERT_KEYS_SQL = `
with input as (
  select * from unnest($2::text[], $3::timestamptz[]) with ordinality as i(event_id, ts, n)
),
k as (
  insert into usage_event_keys (organization_id, event_id, ts)
  select $1::uuid, i.event_id, i.ts from input i
  on conflict do nothing
  returning event_id
)
select i.n::int4 from input i where not exists (select 1 from k where k.event_id = i.event_id)`;

/**
 * Step 2: only the new events, by COPY: PostgreSQL writes them with multi-row inserts (one WAL record
 * per page, not per row) and routes them to their monthly partition.
 */
export const COPY_EVENTS_SQL = 'copy usage_events (organization_id, event_id, customer_id, event_name, ts, properties) from stdin';

/**
 * Step 3, last before COMMIT so the hot marks stay locked as briefly as possible: every
 * (subscription, period) overlapping a customer's span of new events is marked (a re-mark bumps the
 * version, which keeps a concurrent rollup from clearing it). Rows in key order: concurrent batches
 * lock them in one order.
 */
export const MARK_DIRTY_SQL = `
insert into usage_rollup_dirty (subscription_id, period_start, organization_id)
select distinct s.id, bp.period_start, s.organization_id
from unnest($2::uuid[], $3::timestamptz[], $4::timestamptz[]) as x(customer_id, lo, hi)
join subscriptions s on s.customer_id = x.customer_id and s.organization_id = $1::uuid
                    and s.started_at <= x.hi and (s.ends_at is null or s.ends_at > x.lo)
join billing_periods bp on bp.subscription_id = s.id and bp.period_start <= x.hi and bp.period_end > x.lo
order by 1, 2
on conflict (subscription_id, period_start) do update
  set version = nextval('usage_rollup_dirty_version_seq'), marked_at = now()`;

/** SQLSTATEs worth one more try: deadlock, serialization failure, no partition for a row (dropped under us). */
const RETRYABLE = new Set(['40P01', '40001', '23514']);

/**
 * Writes a batch in one transaction: keys, events and dirty marks commit together or not at all
 * (rollups rely on it: an event is never visible without its mark). A part of IngestService, not
 * a provider of its own.
 */
export class BatchWriter {
  private readonly logger = new Logger('IngestService');

  private readonly inFlight = new InFlightKeys();

  constructor(private readonly partitions: UsagePartitions) {}

  /** A claim on event ids for one batch (see InFlightKeys); release it when the batch is done. */
  claim(organizationId: string): BatchClaim {
    return this.inFlight.begin(organizationId);
  }

  /**
   * Writes `own` (ids this batch claimed) and then `pending` (ids another batch of this process has
   * in flight). Each is sorted by event_id — one lock order for every batch, so batches of several
   * processes sharing new ids do not deadlock — and distinct. Returns how many events were new and
   * how many marks were written.
   */
  async write(em: EntityManager, organizationId: string, own: readonly EventRow[], pending: readonly EventRow[], months: Iterable<number>): Promise<{ accepted: number; dirty: number }> {
    const parts = [own, pending].filter((p) => p.length > 0).map((p) => encodePart(organizationId, p));
    for (let attempt = 1; ; attempt++) {
      try {
        await this.partitions.ensureMonths(em, months);
        return await em.getKnex().transaction(async (trx) => {
          const conn = (await trx.client.acquireConnection()) as PgClient;
          return this.inTransaction(conn, organizationId, parts);
        });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt >= 3 || !code || !RETRYABLE.has(code)) throw err;
        if (code === '23514') this.partitions.forget();
        this.logger.warn({ code, attempt }, 'retrying an ingest batch');
      }
    }
  }

  /**
   * Ids no other batch of this process is writing go first: their keys and events are written
   * without waiting. Ids another batch has in flight go second, where PostgreSQL waits for that
   * batch's outcome (a duplicate if it committed; ours to store if it rolled back). The marks come
   * last, just before COMMIT.
   */
  private async inTransaction(conn: PgClient, organizationId: string, parts: readonly EncodedPart[]) {
    const fresh: EventRow[] = [];
    for (const part of parts) {
      const res = await conn.query<[number]>({ text: INSERT_KEYS_SQL, values: [organizationId, part.ids, part.timestamps], rowMode: 'array' });
      let data = part.lines.buffer;
      if (res.rows.length === part.rows.length) continue;
      if (res.rows.length === 0) {
        for (const r of part.rows) fresh.push(r);
      } else {
        const duplicate = new Uint8Array(part.rows.length);
        for (const [n] of res.rows) duplicate[n - 1] = 1;
        part.rows.forEach((r, i) => duplicate[i] === 0 && fresh.push(r));
        data = withoutLines(part.lines, duplicate);
      }
      await pipeline(Readable.from([data]), conn.query(copyFrom(COPY_EVENTS_SQL)));
    }
    if (fresh.length === 0) return { accepted: 0, dirty: 0 };
    const spans = customerSpans(fresh);
    const marked = await conn.query({
      text: MARK_DIRTY_SQL,
      values: [organizationId, textArrayLiteral(spans.customerIds), textArrayLiteral(spans.lo), textArrayLiteral(spans.hi)],
    });
    return { accepted: fresh.length, dirty: marked.rowCount ?? 0 };
  }
}

/** A part of a batch with its statement parameters and COPY data, encoded before the transaction. */
interface EncodedPart {
  rows: readonly EventRow[];
  ids: string;
  timestamps: string;
  lines: CopyLines;
}

function encodePart(organizationId: string, rows: readonly EventRow[]): EncodedPart {
  return {
    rows,
    ids: textArrayLiteral(rows.map((r) => r.eventId)),
    timestamps: textArrayLiteral(rows.map((r) => r.timestamp)),
    lines: encodeLines(rows.length, (i) => copyLine(organizationId, rows[i])),
  };
}

/** One event as a line of COPY's text format (the columns of COPY_EVENTS_SQL). */
export function copyLine(organizationId: string, r: EventRow): string {
  return `${organizationId}\t${copyField(r.eventId)}\t${r.customerId}\t${copyField(r.eventName)}\t${r.timestamp}\t${copyJsonField(JSON.stringify(r.properties))}\n`;
}
