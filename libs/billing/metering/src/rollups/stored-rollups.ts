import type { EntityManager } from '@mikro-orm/postgresql';
import { pairKeys } from './rollup-sql';
import type { StoredRollup } from './rollups.service';

type PairKey = { subscription_id: string; period_start: Date | string };

/** A stored rollup row as readers take it (amounts as exact decimal text): `StoredRollup`. */
export type StoredRollupRow = StoredRollup;

const STORED_COLUMNS = `u.id, u.subscription_id, u.period_start, u.period_end, u.product_id, u.product_key, u.price_key, u.aggregation,
  u.event_count::text as event_count, u.aggregate::text as aggregate, u.digest::text as digest, u.computed_at`;

/**
 * The stored rollups of many (subscription, period) pairs in one read, in (pair, product_key,
 * price_key) order: what a page of period ratings reads. `RollupsService.stored` is this with one pair.
 */
export async function storedRollupsOf(em: EntityManager, pairs: readonly PairKey[]): Promise<StoredRollupRow[]> {
  if (!pairs.length) return [];
  return em.execute<StoredRollupRow[]>(
    `select ${STORED_COLUMNS}
     from unnest(?::uuid[], ?::timestamptz[]) as p(subscription_id, period_start)
     join usage_rollups u on u.subscription_id = p.subscription_id and u.period_start = p.period_start
     order by u.subscription_id, u.period_start, u.product_key, u.price_key`,
    pairKeys(pairs),
  );
}

/**
 * Which of `pairs` need a recompute before they are read as stored: never rolled up, or marked by
 * events since (one read). `RollupsService.ensureFresh` asks the same of one pair.
 */
export async function stalePairsOf(em: EntityManager, pairs: readonly PairKey[]): Promise<{ subscription_id: string; period_start: string }[]> {
  if (!pairs.length) return [];
  return em.execute<{ subscription_id: string; period_start: string }[]>(
    `select p.subscription_id, p.period_start
     from unnest(?::uuid[], ?::timestamptz[]) as p(subscription_id, period_start)
     -- Correlated probes of the primary keys (offset 0 keeps them sub-plans, not hash joins over the
     -- whole tables, whatever the planner's statistics say after a bulk write).
     where not exists (select 1 from usage_rollup_periods r where r.subscription_id = p.subscription_id and r.period_start = p.period_start offset 0)
        or exists (select 1 from usage_rollup_dirty d where d.subscription_id = p.subscription_id and d.period_start = p.period_start offset 0)`,
    pairKeys(pairs),
  );
}
