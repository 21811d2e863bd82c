import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { OutboxService, ValidationError, type OutboxEvent } from '@closebook/platform';
import { thresholdsReached, type DimensionState } from '../allowance/allowance-calculator';
import { AllowanceEngine, type AllowanceAnswer, type AllowanceQuestion } from '../allowance/allowance-engine';
import { toSubscriptionRow, type SubscriptionRow } from '../catalog/billing-sources';
import { storedRollupsOf } from './stored-rollups';
import { COMPUTE_ROLLUPS_SQL, COMPUTE_ROLLUPS_UNTIL_SQL, pairKeys, RECOMPUTE_ROLLUPS_SQL } from './rollup-sql';

/**
 * One rollup as computed from raw events (reconciliation compares these with the stored rows).
 * Instants are PostgreSQL's text ("2026-11-01 00:00:00+00"), as raw queries return them.
 */
export interface RollupValue {
  subscription_id: string;
  period_start: string;
  period_end: string;
  product_id: string;
  product_key: string;
  price_key: string;
  aggregation: string;
  event_count: string;
  aggregate: string;
  digest: string;
}

/** A stored rollup, as the usage endpoint and the rating flow read it. */
export interface StoredRollup extends RollupValue {
  id: string;
  computed_at: string;
}

export interface RecomputeResult {
  subscription_id: string;
  period_start: string;
  /** False when the subscription has no billing period starting at period_start. */
  found: boolean;
  /** 'busy': another worker holds this pair right now (try-lock mode only); nothing was done. */
  status: 'done' | 'busy';
  rollups: number;
  /** Whether the dirty mark was cleared (it stays when events arrived during the recompute). */
  cleared: boolean;
  thresholds_emitted: number;
}

/** A row of RECOMPUTE_ROLLUPS_SQL: the pair, what was written, and the subscription and period as read. */
interface RecomputedPair {
  subscription_id: string;
  period_start: string;
  rollups: number;
  covered: string;
  organization_id: string;
  customer_id: string;
  plan_version_id: string;
  status: string;
  started_at: string;
  ends_at: string | null;
  billing_anchor: unknown;
  seats: number | null;
  period_end: string;
  seq: number | null;
  usage: { product_key: string; price_key: string; quantity: string }[] | null;
}

/** A (subscription, billing period) pair, the unit rollups are kept and locked by. */
export interface RollupPair {
  subscription_id: string;
  period_start: Date | string;
}

/** Pairs per recompute statement: large enough to amortize the round trips, small enough to keep a transaction short. */
export const RECOMPUTE_PAGE = 200;

export interface ProcessDirtyResult {
  processed: number;
  busy: number;
  remaining: boolean;
}

const iso = (d: Date | string) => (d instanceof Date ? d : new Date(d)).toISOString();
const pairKey = (p: RollupPair) => `${p.subscription_id}|${iso(p.period_start)}`;

/**
 * Rollups: kept current from the dirty marks ingest writes, recomputed set-based from raw events,
 * each (subscription, period) in its own transaction under an advisory lock on the pair, so two
 * workers never interleave on one pair and a retried or duplicated job recomputes to the same rows.
 */
@Injectable()
export class RollupsService {
  private readonly logger = new Logger('RollupsService');

  constructor(private readonly outbox: OutboxService, private readonly engine: AllowanceEngine) {}

  /** Recomputes one (subscription, period) now, waiting for any worker holding it. */
  async recompute(em: EntityManager, subscriptionId: string, periodStart: Date | string): Promise<RecomputeResult> {
    const [res] = await em.transactional((tx) => this.recomputeIn(tx, [{ subscription_id: subscriptionId, period_start: periodStart }], true));
    return res;
  }

  /**
   * Recomputes many pairs now, a page per statement and transaction, waiting for any worker holding
   * one of them (locks are taken in key order, so two such calls never deadlock).
   */
  async recomputeMany(em: EntityManager, pairs: readonly RollupPair[]): Promise<RecomputeResult[]> {
    const out: RecomputeResult[] = [];
    for (let i = 0; i < pairs.length; i += RECOMPUTE_PAGE) {
      const page = pairs.slice(i, i + RECOMPUTE_PAGE);
      out.push(...(await em.transactional((tx) => this.recomputeIn(tx, page, true))));
    }
    return out;
  }

  /**
   * Recomputes one (subscription, period) only when it is marked dirty or was never rolled up;
   * otherwise the stored rollups already cover every committed event (ingest marks the pair in the
   * same statement as the events, subscription changes mark it in their transaction, and a
   * recompute clears only the mark version it read). Returns whether it recomputed.
   */
  async ensureFresh(em: EntityManager, subscriptionId: string, periodStart: Date | string): Promise<boolean> {
    const fresh = await this.freshness(em, subscriptionId, periodStart);
    if (!fresh.dirty && fresh.computed_at) return false;
    await this.recompute(em, subscriptionId, periodStart);
    return true;
  }

  /**
   * Full recompute of every period of an organization overlapping [from, to) (reconciliation of a
   * month). Returns one result per (subscription, period).
   */
  async recomputeRange(em: EntityManager, organizationId: string, from: Date | string, to: Date | string): Promise<RecomputeResult[]> {
    const pairs = await em.execute<{ subscription_id: string; period_start: string }[]>(
      `select bp.subscription_id, bp.period_start from billing_periods bp
       where bp.organization_id = ? and bp.period_start < ?::timestamptz and bp.period_end > ?::timestamptz
       order by bp.subscription_id, bp.period_start`,
      [organizationId, iso(to), iso(from)],
    );
    return this.recomputeMany(em, pairs);
  }

  /** Full recompute of the periods overlapping a calendar month `YYYY-MM` (UTC). */
  async recomputeMonth(em: EntityManager, organizationId: string, month: string): Promise<RecomputeResult[]> {
    const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
    if (!m) throw new ValidationError('invalid_value', 'month must be YYYY-MM', 'period');
    const from = new Date(Date.UTC(+m[1], +m[2] - 1, 1));
    const to = new Date(Date.UTC(+m[1], +m[2], 1));
    return this.recomputeRange(em, organizationId, from, to);
  }

  /** Read-only: the rollups of one (subscription, period) as raw events give them now. */
  async compute(em: EntityManager, subscriptionId: string, periodStart: Date | string): Promise<RollupValue[]> {
    return em.execute<RollupValue[]>(COMPUTE_ROLLUPS_SQL, pairKeys([{ subscription_id: subscriptionId, period_start: periodStart }]));
  }

  /** Read-only: the rollups of one (subscription, period) counting only events before `until`. */
  async computeUntil(em: EntityManager, subscriptionId: string, periodStart: Date | string, until: Date | string): Promise<RollupValue[]> {
    return em.execute<RollupValue[]>(COMPUTE_ROLLUPS_UNTIL_SQL, [iso(until), ...pairKeys([{ subscription_id: subscriptionId, period_start: periodStart }])]);
  }

  /** The stored rollups of one (subscription, period). */
  async stored(em: EntityManager, subscriptionId: string, periodStart: Date | string): Promise<StoredRollup[]> {
    return storedRollupsOf(em, [{ subscription_id: subscriptionId, period_start: periodStart }]);
  }

  /** When the pair was last rolled up (null: never) and whether events are waiting for the next recompute. */
  async freshness(em: EntityManager, subscriptionId: string, periodStart: Date | string): Promise<{ computed_at: string | null; dirty: boolean }> {
    const [row] = await em.execute<{ computed_at: string | null; dirty: boolean }[]>(
      `select (select computed_at from usage_rollup_periods where subscription_id = ?::uuid and period_start = ?::timestamptz) as computed_at,
              exists (select 1 from usage_rollup_dirty where subscription_id = ?::uuid and period_start = ?::timestamptz) as dirty`,
      [subscriptionId, iso(periodStart), subscriptionId, iso(periodStart)],
    );
    return row;
  }

  /**
   * Marks pairs for recompute: the period starting at `opts.periodStart`, or every period ending
   * after `opts.from`, or every period of the subscription. For changes of what a rollup covers (a
   * plan change, a backdated subscription); the subscription lifecycle hook calls it.
   */
  async markDirty(em: EntityManager, subscriptionId: string, opts: { periodStart?: Date | string; from?: Date | string } = {}): Promise<number> {
    const start = opts.periodStart ? iso(opts.periodStart) : null;
    const from = opts.from ? iso(opts.from) : null;
    const rows = await em.execute<{ n: number }[]>(
      `with m as (
         insert into usage_rollup_dirty (subscription_id, period_start, organization_id)
         select bp.subscription_id, bp.period_start, bp.organization_id from billing_periods bp
         where bp.subscription_id = ?::uuid
           and (?::timestamptz is null or bp.period_start = ?::timestamptz)
           and (?::timestamptz is null or bp.period_end > ?::timestamptz)
         order by 1, 2
         on conflict (subscription_id, period_start) do update
           set version = nextval('usage_rollup_dirty_version_seq'), marked_at = now()
         returning 1)
       select count(*)::int as n from m`,
      [subscriptionId, start, start, from, from],
    );
    return rows[0].n;
  }

  /**
   * Marks the current periods that were never rolled up (a subscription created or backdated after
   * its customer's events arrived, a period row created after the events of its first minutes).
   */
  async markUnrolledCurrentPeriods(em: EntityManager, now: Date = new Date()): Promise<number> {
    const rows = await em.execute<{ n: number }[]>(
      `with m as (
         insert into usage_rollup_dirty (subscription_id, period_start, organization_id)
         select bp.subscription_id, bp.period_start, bp.organization_id from billing_periods bp
         where bp.period_start <= ?::timestamptz and bp.period_end > ?::timestamptz
           and not exists (select 1 from usage_rollup_periods rp
                           where rp.subscription_id = bp.subscription_id and rp.period_start = bp.period_start)
         order by 1, 2
         on conflict (subscription_id, period_start) do nothing
         returning 1)
       select count(*)::int as n from m`,
      [now.toISOString(), now.toISOString()],
    );
    return rows[0].n;
  }

  /**
   * Recomputes dirty pairs (of one organization, or all) until none is left or the time budget is
   * spent. Pairs another worker holds are skipped: that worker clears only the mark it read, so a
   * newer mark survives for the next run.
   */
  async processDirty(
    em: EntityManager,
    opts: { organizationId?: string; budgetMs?: number; batch?: number; concurrency?: number } = {},
  ): Promise<ProcessDirtyResult> {
    const deadline = Date.now() + (opts.budgetMs ?? 20_000);
    const page = Math.max(1, opts.batch ?? RECOMPUTE_PAGE);
    const concurrency = Math.max(1, opts.concurrency ?? 2);
    const attempted = new Set<string>();
    let processed = 0;
    let busy = 0;
    for (;;) {
      processed += await this.clearEmpty(em, opts.organizationId);
      const rows = await em.execute<{ subscription_id: string; period_start: string }[]>(
        `select subscription_id, period_start from usage_rollup_dirty
         where (?::uuid is null or organization_id = ?::uuid)
         order by marked_at limit ?`,
        [opts.organizationId ?? null, opts.organizationId ?? null, page * concurrency * 2 + attempted.size],
      );
      const fresh = rows.filter((r) => !attempted.has(pairKey(r)));
      if (fresh.length === 0) return { processed, busy, remaining: rows.length > 0 };
      // A page of pairs per statement; a few pages at a time, each in its own fork and transaction.
      const pages: RollupPair[][] = [];
      for (let i = 0; i < fresh.length; i += page) pages.push(fresh.slice(i, i + page));
      let next = 0;
      let outOfTime = false;
      const lane = async () => {
        for (;;) {
          const p = pages[next++];
          if (!p) return;
          if (Date.now() > deadline) {
            outOfTime = true;
            return;
          }
          const results = await em.fork().transactional((tx) => this.recomputeIn(tx, p, false));
          for (const res of results) {
            if (res.status === 'busy' || !res.cleared) attempted.add(pairKey(res));
            if (res.status === 'busy') busy++;
            else processed++;
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, lane));
      if (outOfTime) return { processed, busy, remaining: true };
    }
  }

  /**
   * Clears, in one statement, the marks of pairs with nothing to roll up: no event of the customer in
   * the period and no rollup that counted any. Most marks are of this kind (a new subscription marks
   * its future periods; a quiet customer's period). Nothing is lost: a pair never computed is computed
   * when it is rated or read (`ensureFresh`), and an event arriving meanwhile bumps the mark's version,
   * which this delete then leaves in place (one snapshot for the check and the delete).
   */
  private async clearEmpty(em: EntityManager, organizationId?: string): Promise<number> {
    const [row] = await em.execute<{ n: number }[]>(
      `with d as (
         select d.subscription_id, d.period_start, d.version from usage_rollup_dirty d
         where (?::uuid is null or d.organization_id = ?::uuid)
         order by d.marked_at limit 5000
       ), empty as (
         select d.* from d
         join subscriptions s on s.id = d.subscription_id
         join billing_periods bp on bp.subscription_id = d.subscription_id and bp.period_start = d.period_start
         where not exists (select 1 from usage_events e where e.organization_id = s.organization_id and e.customer_id = s.customer_id
                             and e.ts >= bp.period_start and e.ts < bp.period_end)
           and not exists (select 1 from usage_rollups u where u.subscription_id = d.subscription_id and u.period_start = d.period_start and u.event_count > 0)
       ), cleared as (
         delete from usage_rollup_dirty x using empty
         where x.subscription_id = empty.subscription_id and x.period_start = empty.period_start and x.version = empty.version
         returning 1
       )
       select count(*)::int as n from cleared`,
      [organizationId ?? null, organizationId ?? null],
    );
    return row?.n ?? 0;
  }

  /**
   * Recomputes pairs in the caller's transaction, each under its advisory lock (`wait`: block for a
   * holder; else skip the pair as busy). Returns one result per distinct pair asked, in key order.
   */
  private async recomputeIn(tx: EntityManager, pairs: readonly RollupPair[], wait: boolean): Promise<RecomputeResult[]> {
    const byKey = new Map(pairs.map((p) => [pairKey(p), { subscription_id: p.subscription_id, period_start: iso(p.period_start) }]));
    const sorted = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, p]) => p);
    if (!sorted.length) return [];
    const lockKeys = `{${sorted.map((p) => `"usage_rollup:${p.subscription_id}:${p.period_start}"`).join(',')}}`;
    // Locks in key order (no deadlock between waiters). A period's covered events are materialised
    // and hashed in memory; 4 MB (the default work_mem) spills to disk early. Set transaction-locally.
    const lock = wait ? `pg_advisory_xact_lock(hashtextextended(k, 0))::text` : `pg_try_advisory_xact_lock(hashtextextended(k, 0))::text`;
    const locks = await tx.execute<{ k: string; ok: string }[]>(
      `select k, ${lock} as ok, set_config('work_mem', '64MB', true) as work_mem
       from unnest(?::text[]) with ordinality as x(k, i) order by i`,
      [lockKeys],
    );
    // pg_advisory_xact_lock returns void (its text is ''): it returned, so the lock is held.
    const got = new Set(locks.filter((l) => wait || l.ok === 'true').map((l) => l.k));
    const held = new Set(sorted.filter((p) => got.has(`usage_rollup:${p.subscription_id}:${p.period_start}`)).map(pairKey));
    const busyResult = (p: { subscription_id: string; period_start: string }): RecomputeResult => ({ ...p, found: false, status: 'busy', rollups: 0, cleared: false, thresholds_emitted: 0 });
    if (!held.size) return sorted.map(busyResult);
    const keys = pairKeys(sorted.filter((p) => held.has(pairKey(p))));
    // The marks are read before the recompute: every event committed with this version (or earlier)
    // is visible to the statement below, which takes its snapshot after this one.
    const marks = await tx.execute<{ subscription_id: string; period_start: string; version: string }[]>(
      `select subscription_id, period_start, version::text as version from usage_rollup_dirty
       where (subscription_id, period_start) in (select * from unnest(?::uuid[], ?::timestamptz[]))`,
      keys,
    );
    const rows = await tx.execute<RecomputedPair[]>(RECOMPUTE_ROLLUPS_SQL, keys);
    const written = new Map(rows.map((r) => [pairKey(r), r]));
    // No usage, no threshold: empty periods (the next one, a quiet customer's) skip the allowance rating.
    // The pairs with usage are rated together: their terms and grants read once for the page.
    const active = rows.filter((r) => r.usage);
    const questions = active.map(toQuestion);
    const answers = await this.engine.statesMany(tx, questions);
    const reached: { pair: string; event: OutboxEvent }[] = [];
    for (const [i, r] of active.entries()) for (const event of this.thresholdEvents(questions[i], answers[i])) reached.push({ pair: pairKey(r), event });
    // Once per threshold: the outbox's dedupe key makes "once" a database guarantee, in this transaction.
    const fresh = await this.outbox.emitMany(tx, reached.map((x) => x.event));
    const emitted = new Map<string, number>();
    for (const x of reached) if (fresh.has(x.event.dedupeKey!)) emitted.set(x.pair, (emitted.get(x.pair) ?? 0) + 1);
    // Clear only the mark versions read above (a newer mark means events the recompute may not have
    // seen), locking the rows in key order as ingest upserts them.
    const cleared = new Set<string>();
    if (marks.length) {
      const deleted = await tx.execute<{ subscription_id: string; period_start: string }[]>(
        `with m as (select * from unnest(?::uuid[], ?::timestamptz[], ?::bigint[]) as m(subscription_id, period_start, version)),
         l as (select d.subscription_id, d.period_start from usage_rollup_dirty d
               join m on m.subscription_id = d.subscription_id and m.period_start = d.period_start and m.version = d.version
               order by d.subscription_id, d.period_start for update of d)
         delete from usage_rollup_dirty d using l
         where d.subscription_id = l.subscription_id and d.period_start = l.period_start
         returning d.subscription_id, d.period_start`,
        [...pairKeys(marks), `{${marks.map((m) => m.version).join(',')}}`],
      );
      for (const d of deleted) cleared.add(pairKey(d));
    }
    return sorted.map((p) => {
      if (!held.has(pairKey(p))) return busyResult(p);
      const w = written.get(pairKey(p));
      return { ...p, found: !!w, status: 'done', rollups: w?.rollups ?? 0, cleared: cleared.has(pairKey(p)), thresholds_emitted: emitted.get(pairKey(p)) ?? 0 };
    });
  }

  /**
   * `allowance.threshold_reached` for every threshold (80%, 100%) each dimension of the pair has
   * reached, its terms deciding what is included; the caller writes them with their dedupe keys, so
   * each is announced once per period.
   */
  private thresholdEvents({ sub, period }: AllowanceQuestion, answer: AllowanceAnswer): OutboxEvent[] {
    const periodStart = period.start.toISOString();
    if ('error' in answer) {
      // A plan the rating core refuses must not stop the rollups; the invoice run reports it.
      this.logger.warn({ err: answer.error, subscriptionId: sub.id, periodStart }, 'allowance thresholds skipped');
      return [];
    }
    return answer.states.dimensions.flatMap((d) =>
      thresholdsReached(d).map((threshold) => ({
        organizationId: sub.organizationId,
        type: 'allowance.threshold_reached' as const,
        dedupeKey: `allowance.threshold_reached:${sub.id}:${periodStart}:${d.product_key}:${d.price_key ?? '-'}:${threshold}`,
        payload: thresholdPayload(sub, period.start, period.end, d, threshold),
      })),
    );
  }
}

/** A recomputed pair with usage as the allowance engine takes it: the subscription and period as the statement read them, the usage as it stored it. */
function toQuestion(r: RecomputedPair): AllowanceQuestion {
  return {
    sub: toSubscriptionRow({ ...r, id: r.subscription_id }),
    period: { start: new Date(r.period_start), end: new Date(r.period_end), seq: r.seq == null ? null : Number(r.seq) },
    usage: (r.usage ?? []).map((u) => ({ product_key: u.product_key, price_key: u.price_key, quantity: u.quantity })),
  };
}

function thresholdPayload(
  sub: SubscriptionRow,
  start: Date,
  end: Date,
  d: DimensionState,
  threshold: number,
): Record<string, unknown> {
  return {
    subscription_id: sub.id,
    customer_id: sub.customerId,
    period: { start: start.toISOString(), end: end.toISOString() },
    product_key: d.product_key,
    price_key: d.price_key,
    unit: d.unit,
    threshold,
    included: d.included,
    rolled_over: d.rolled_over,
    used: d.used,
    percent_used: d.percent_used,
    capped: d.capped,
  };
}
