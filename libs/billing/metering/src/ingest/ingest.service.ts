import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { JobsService } from '@closebook/platform';
import { BatchWriter, type EventRow } from './batch-writer';
import { isRejected, validateEvent, type RejectedEvent, type ValidEvent } from './event-validation';
import { MonthSet, UsagePartitions } from './partitions';

export interface IngestResult {
  accepted: number;
  duplicates: number;
  rejected: RejectedEvent[];
}

const CUSTOMERS_SQL = `
select c.external_id, c.id from customers c
where c.organization_id = ?::uuid and c.external_id in (select jsonb_array_elements_text(?::jsonb))`;

const byEventId = (a: EventRow, b: EventRow) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0);

/**
 * `POST /v1/events`: validates a batch item by item, resolves customers, sets aside repeats, and
 * hands the rest to BatchWriter (keys, events and dirty marks in one transaction).
 */
@Injectable()
export class IngestService {
  private readonly logger = new Logger('IngestService');
  /** org → the second for which a rollup job was last enqueued (saves a Redis call per batch). */
  private readonly lastEnqueued = new Map<string, number>();

  private readonly writer: BatchWriter;

  constructor(partitions: UsagePartitions, private readonly jobs: JobsService) {
    this.writer = new BatchWriter(partitions);
  }

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
    const claim = this.writer.claim(organizationId);
    try {
      const own: EventRow[] = [];
      const pending: EventRow[] = [];
      // Ids another batch holds are rare; their repeats in this batch are found here.
      const pendingIds = new Set<string>();
      const months = new MonthSet();
      let duplicates = 0;
      for (const v of valid) {
        const customerId = customers.get(v.customerExternalId);
        if (customerId === undefined) {
          rejected.push({ index: v.index, event_id: v.eventId, code: 'unknown_customer', reason: `no customer has the external id ${JSON.stringify(v.customerExternalId)}` });
          continue;
        }
        // The first occurrence of an event_id in the batch is the one considered; later ones are duplicates.
        const took = claim.take(v.eventId);
        if (took === 'repeat' || (took === 'held' && pendingIds.has(v.eventId))) {
          duplicates++;
          continue;
        }
        const row: EventRow = { eventId: v.eventId, customerId, eventName: v.eventName, timestamp: v.timestamp, ms: v.ms, properties: v.properties };
        if (took === 'claimed') own.push(row);
        else {
          pendingIds.add(v.eventId);
          pending.push(row);
        }
        months.add(v.ms);
      }
      rejected.sort((a, b) => a.index - b.index);
      const total = own.length + pending.length;
      if (total === 0) return { accepted: 0, duplicates, rejected };

      own.sort(byEventId);
      pending.sort(byEventId);
      const { accepted, dirty } = await this.writer.write(em, organizationId, own, pending, months.indexes);
      if (dirty > 0) await this.enqueueRollup(organizationId);
      return { accepted, duplicates: duplicates + total - accepted, rejected };
    } finally {
      claim.release();
    }
  }

  private async customerIds(em: EntityManager, organizationId: string, externalIds: Set<string>): Promise<Map<string, string>> {
    const found = await em.getKnex().raw<{ rows: { external_id: string; id: string }[] }>(CUSTOMERS_SQL, [organizationId, JSON.stringify([...externalIds])]);
    return new Map(found.rows.map((r) => [r.external_id, r.id]));
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
