import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { JobsService } from '@closebook/platform';
import { isRejected, validateEvent, type RejectedEvent, type ValidEvent } from './event-validation';
import { monthIndexOf, UsagePartitions } from './partitions';

export interface IngestResult {
  accepted: number;
  duplicates: number;
  rejected: RejectedEvent[];
}

/**
 * One statement writes a batch: the key table decides which events are new (ON CONFLICT DO NOTHING
 * on the primary key (organization_id, event_id)), only those are inserted into the partitioned
 * event table, and the (subscription, period) pairs they touch are marked dirty for the rollup job —
 * atomically, so a crash can never leave an event without its key or its dirty mark.
 * Parameters: [rows (jsonb array of [event_id, customer uuid, event_name, timestamp, properties]), organization_id].
 */
export const INGEST_SQL = `
with input as materialized (
  select a->>0 as event_id, (a->>1)::uuid as customer_id, a->>2 as event_name,
         (a->>3)::timestamptz as ts, a->4 as properties
  from jsonb_array_elements(?::jsonb) a
),
org as (select ?::uuid as id),
k as (
  insert into usage_event_keys (organization_id, event_id, ts)
  select org.id, i.event_id, i.ts from input i, org
  on conflict do nothing
  returning event_id
),
ins as (
  insert into usage_events (organization_id, event_id, customer_id, event_name, ts, properties)
  select org.id, i.event_id, i.customer_id, i.event_name, i.ts, i.properties
  from input i join k on k.event_id = i.event_id, org
  returning customer_id, ts
),
span as (
  select customer_id, min(ts) as lo, max(ts) as hi from ins group by customer_id
),
dirty as (
  insert into usage_rollup_dirty (subscription_id, period_start, organization_id)
  select distinct s.id, bp.period_start, s.organization_id
  from span x
  join org on true
  join subscriptions s on s.customer_id = x.customer_id and s.organization_id = org.id
                      and s.started_at <= x.hi and (s.ends_at is null or s.ends_at > x.lo)
  join billing_periods bp on bp.subscription_id = s.id and bp.period_start <= x.hi and bp.period_end > x.lo
  order by 1, 2
  on conflict (subscription_id, period_start) do update
    set version = nextval('usage_rollup_dirty_version_seq'), marked_at = now()
  returning 1
)
select (select count(*) from k)::int as accepted, (select count(*) from dirty)::int as dirty`;

const CUSTOMERS_SQL = `
select c.external_id, c.id from customers c
where c.organization_id = ?::uuid and c.external_id in (select jsonb_array_elements_text(?::jsonb))`;

/** SQLSTATEs worth one more try: deadlock, serialization failure, no partition for a row (dropped under us). */
const RETRYABLE = new Set(['40P01', '40001', '23514']);

@Injectable()
export class IngestService {
  private readonly logger = new Logger('IngestService');
  /** org → the second for which a rollup job was last enqueued (saves a Redis call per batch). */
  private readonly lastEnqueued = new Map<string, number>();

  constructor(private readonly partitions: UsagePartitions, private readonly jobs: JobsService) {}

  /**
   * Validates and stores a batch. Per-item problems reject that item (with its index and reason);
   * duplicates — within the batch, or of any event stored before — count once, enforced by the
   * database. `events` has passed the whole-request checks (an array of at most 10,000).
   */
  async ingest(em: EntityManager, organizationId: string, events: readonly unknown[], nowMs = Date.now()): Promise<IngestResult> {
    const rejected: RejectedEvent[] = [];
    const valid: ValidEvent[] = [];
    const externalIds = new Set<string>();
    for (let i = 0; i < events.length; i++) {
      const v = validateEvent(events[i], i, nowMs);
      if (isRejected(v)) rejected.push(v);
      else {
        valid.push(v);
        externalIds.add(v.customerExternalId);
      }
    }
    if (valid.length === 0) return { accepted: 0, duplicates: 0, rejected };

    const customers = await this.customerIds(em, organizationId, externalIds);
    // The first occurrence of an event_id in the batch is the one considered; later ones are duplicates.
    const seen = new Set<string>();
    const rows: [string, string, string, string, unknown][] = [];
    const months = new Set<number>();
    let duplicates = 0;
    for (const v of valid) {
      const customerId = customers.get(v.customerExternalId);
      if (customerId === undefined) {
        rejected.push({ index: v.index, event_id: v.eventId, code: 'unknown_customer', reason: `no customer has the external id ${JSON.stringify(v.customerExternalId)}` });
        continue;
      }
      if (seen.has(v.eventId)) {
        duplicates++;
        continue;
      }
      seen.add(v.eventId);
      months.add(monthIndexOf(v.ms));
      rows.push([v.eventId, customerId, v.eventName, v.timestamp, v.properties]);
    }
    rejected.sort((a, b) => a.index - b.index);
    if (rows.length === 0) return { accepted: 0, duplicates, rejected };

    // One lock order for every batch (event_id ascending), so concurrent batches sharing ids never deadlock.
    rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const payload = JSON.stringify(rows);
    const { accepted, dirty } = await this.write(em, organizationId, payload, months);
    if (dirty > 0) await this.enqueueRollup(organizationId);
    return { accepted, duplicates: duplicates + rows.length - accepted, rejected };
  }

  private async customerIds(em: EntityManager, organizationId: string, externalIds: Set<string>): Promise<Map<string, string>> {
    const found = await em.getKnex().raw<{ rows: { external_id: string; id: string }[] }>(CUSTOMERS_SQL, [organizationId, JSON.stringify([...externalIds])]);
    return new Map(found.rows.map((r) => [r.external_id, r.id]));
  }

  /**
   * The batch goes as one bound jsonb parameter through knex (not em.execute, which would inline a
   * multi-megabyte literal into the SQL text); a single statement is its own transaction.
   */
  private async write(em: EntityManager, organizationId: string, payload: string, months: Set<number>): Promise<{ accepted: number; dirty: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.partitions.ensureMonths(em, months);
        const res = await em.getKnex().raw<{ rows: { accepted: number; dirty: number }[] }>(INGEST_SQL, [payload, organizationId]);
        return res.rows[0];
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt >= 3 || !code || !RETRYABLE.has(code)) throw err;
        if (code === '23514') this.partitions.forget();
        this.logger.warn({ code, attempt }, 'retrying an ingest batch');
      }
    }
  }

  /**
   * At most one rollup job per organization per second; the job runs just after that second ends,
   * so it sees every mark made in it. Best effort: the marks are in PostgreSQL, and the scheduled
   * sweep picks up anything a lost enqueue missed.
   */
  private async enqueueRollup(organizationId: string): Promise<void> {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (this.lastEnqueued.get(organizationId) === second) return;
    this.lastEnqueued.set(organizationId, second);
    if (this.lastEnqueued.size > 10_000) this.lastEnqueued.clear();
    try {
      await this.jobs.enqueue(
        'metering.rollup',
        { organization_id: organizationId },
        { jobId: `metering-rollup-${organizationId}-${second}`, delay: (second + 1) * 1000 - now + 50 },
      );
    } catch (err) {
      this.logger.warn({ err }, 'could not enqueue a rollup job; the sweep will pick the marks up');
    }
  }
}
