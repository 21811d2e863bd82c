import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';

/** Months since year 0 of an instant's UTC month: the partition key of `usage_events`. */
export function monthIndexOf(ms: number): number {
  const d = new Date(ms);
  return d.getUTCFullYear() * 12 + d.getUTCMonth();
}

/**
 * The months (partitions) a batch touches. Consecutive events mostly fall in one month, so the last
 * month's bounds are checked before building a Date (10,000 of them per batch showed in profiles).
 */
export class MonthSet {
  readonly indexes = new Set<number>();
  private from = 1;
  private to = 0;

  add(ms: number): void {
    if (ms >= this.from && ms < this.to) return;
    const m = monthIndexOf(ms);
    this.indexes.add(m);
    // Date.UTC reads years 0-99 as 19xx; ingest refuses timestamps before 2000 anyway.
    this.from = Date.UTC(Math.floor(m / 12), m % 12, 1);
    this.to = Date.UTC(Math.floor(m / 12), (m % 12) + 1, 1);
  }
}

/** `2026-11-01` for a month index. */
export function monthStart(index: number): string {
  const y = Math.floor(index / 12);
  const m = (index % 12) + 1;
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-01`;
}

/** `usage_events_y2026m11`: the name closebook_ensure_usage_partition gives a month's partition. */
export function partitionName(index: number): string {
  const [y, m] = monthStart(index).split('-');
  return `usage_events_y${y}m${m}`;
}

/**
 * Monthly partitions of `usage_events`, created on demand: before a batch is written, every month it
 * touches is ensured once per process (the SQL function is idempotent and serialised by an advisory
 * lock, so concurrent API processes can race safely). The sweep also creates the next month ahead.
 */
@Injectable()
export class UsagePartitions {
  private readonly known = new Set<number>();

  async ensureMonths(em: EntityManager, months: Iterable<number>): Promise<void> {
    for (const m of months) {
      if (this.known.has(m)) continue;
      await em.execute('select closebook_ensure_usage_partition(?::date) as name', [monthStart(m)]);
      this.known.add(m);
    }
  }

  /** Ensures the current and the next month (called by the sweep, so month rollover never waits on DDL). */
  async ensureAhead(em: EntityManager, nowMs = Date.now()): Promise<void> {
    const m = monthIndexOf(nowMs);
    await this.ensureMonths(em, [m, m + 1]);
  }

  /** Forgets what this process believes exists (after a partition was dropped under it). */
  forget(): void {
    this.known.clear();
  }
}
