/**
 * In-process memory of what an allowance read needs that does not change between events: the
 * published plan documents (frozen by a database trigger once published) and a period's terms as
 * segments. Segments are a pure function of the subscription's row, its add-on rows and its change
 * rows (the subscriptions module's rule), so they are remembered under a digest of exactly those rows
 * (`termsKeySql`), computed by the database in the same statement that reads the rest: any write to
 * them changes the key, so a remembered value is never stale — it is just not found.
 */
import type { RatingPlanVersion, StateSegment } from '@closebook/rating';

/** A period's terms as the rating core takes them. */
export interface PeriodTerms {
  /** `termsKeySql` of the rows these segments were made from; '' when they must not be remembered (a draft plan document). */
  key: string;
  segments: readonly StateSegment[];
}

/**
 * md5 over the subscription row `alias` and every add-on and change row of it (canceled ones too:
 * more keys, never a wrong one). Cheap: a subscription has a handful of such rows.
 */
export function termsKeySql(alias: string): string {
  return `md5(to_jsonb(${alias})::text
    || '|' || coalesce((select jsonb_agg(to_jsonb(a) order by a.id)::text from subscription_addons a where a.subscription_id = ${alias}.id), '')
    || '|' || coalesce((select jsonb_agg(to_jsonb(ch) order by ch.id)::text from subscription_changes ch where ch.subscription_id = ${alias}.id), ''))`;
}

/** A bounded map that forgets the least recently used entry first. */
export class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  get size(): number {
    return this.map.size;
  }
}

export { deepFreeze } from '@closebook/platform';

export const periodTermsKey = (subscriptionId: string, start: Date, end: Date, termsKey: string) =>
  `${subscriptionId}|${start.toISOString()}|${end.toISOString()}|${termsKey}`;

export type PlanDocuments = Lru<RatingPlanVersion>;
