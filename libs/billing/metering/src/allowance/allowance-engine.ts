import { Inject, Injectable, Optional } from '@nestjs/common';
import { IsolationLevel } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CatalogService } from '@closebook/catalog';
import { MoneyError } from '@closebook/money';
import { NotFoundError } from '@closebook/platform';
import { SubscriptionsService, toRatingState, type StateSegmentAt } from '@closebook/subscriptions';
import type { AllowanceGrant, StateSegment, TransitionKind } from '@closebook/rating';
import type { PeriodRow, SubscriptionRow } from '../catalog/billing-sources';
import { periodAllowanceStates, type AllowanceStates, type DimensionUsage } from './allowance-calculator';
import { ALLOWANCE_GRANTS_SOURCE, TableAllowanceGrantsSource, type AllowanceGrantsSource } from './allowance-grants';
import { deepFreeze, Lru, periodTermsKey, termsKeySql, type PeriodTerms } from './allowance-terms';

export { ALLOWANCE_GRANTS_SOURCE, TableAllowanceGrantsSource, type AllowanceGrantsSource } from './allowance-grants';

/** Entries, not bytes: a period's segments share their plan documents (the catalog's, remembered there). */
const TERMS_CACHE_ENTRIES = 20_000;
/** An answer is ~1–2 KB. */
const RATINGS_CACHE_ENTRIES = 10_000;

/** A (subscription, billing period) pair as the allowance reads it. */
export interface AllowancePair {
  sub: SubscriptionRow;
  period: PeriodRow;
}

/** A pair with the usage quantities to rate. */
export interface AllowanceQuestion extends AllowancePair {
  usage: DimensionUsage[];
}

/** The states of one pair, or the rating core's refusal of its plan or period. */
export type AllowanceAnswer = { states: AllowanceStates } | { error: MoneyError };

/**
 * Loads what the allowance state of (subscription, period) pairs depends on — each subscription's
 * terms over its period as segments (plan version, seats, add-ons from its recorded changes, the
 * subscriptions module's rule), the pinned plan documents, carried-in grants — and hands them with
 * the usage quantities to the pure calculator, which rates them with `ratePeriodInvoice`.
 *
 * One load path for one pair and for a page of pairs: the inputs of every pair are read together in a
 * constant number of statements (the subscriptions module's `segmentsAndEndMany`, one read of the
 * plan documents not yet remembered, `grantsMany`), then each pair is computed in memory by the same
 * functions. A single pair is a page of one.
 */
@Injectable()
export class AllowanceEngine {
  readonly grantsSource: AllowanceGrantsSource;
  private readonly terms_ = new Lru<PeriodTerms>(TERMS_CACHE_ENTRIES);
  private readonly ratings = new Lru<AllowanceStates>(RATINGS_CACHE_ENTRIES);

  constructor(
    private readonly subscriptions: SubscriptionsService,
    private readonly catalog: CatalogService,
    @Optional() @Inject(ALLOWANCE_GRANTS_SOURCE) grantsSource?: AllowanceGrantsSource,
  ) {
    this.grantsSource = grantsSource ?? new TableAllowanceGrantsSource();
  }

  /** The states of one pair (`statesMany` of one); a plan or period the rating core refuses throws its MoneyError. */
  async states(em: EntityManager, sub: SubscriptionRow, period: PeriodRow, usage: DimensionUsage[]): Promise<AllowanceStates> {
    const [answer] = await this.statesMany(em, [{ sub, period, usage }]);
    if ('error' in answer) throw answer.error;
    return answer.states;
  }

  /**
   * The states of many pairs, in their order, from one load of their inputs (`loadTerms`, `grantsMany`). A pair the
   * rating core refuses (a MoneyError) gets its error and the others their states; any other error
   * (a row gone, the database) is thrown.
   */
  async statesMany(em: EntityManager, questions: readonly AllowanceQuestion[]): Promise<AllowanceAnswer[]> {
    if (!questions.length) return [];
    const terms = await this.loadTerms(em, questions);
    const grants = await this.grantsMany(em, questions);
    return questions.map((q, i): AllowanceAnswer => {
      try {
        return { states: this.rate(q.sub, q.period, terms[i].terms.segments, q.usage, grants[i]) };
      } catch (err) {
        if (err instanceof MoneyError) return { error: err };
        throw err;
      }
    });
  }

  /** The carried-in grants of many pairs, in their order: one read when the source can (`grantsMany`), else pair by pair. */
  async grantsMany(em: EntityManager, pairs: readonly AllowancePair[]): Promise<AllowanceGrant[][]> {
    if (!pairs.length) return [];
    if (this.grantsSource.grantsMany) return this.grantsSource.grantsMany(em, pairs);
    const out: AllowanceGrant[][] = [];
    for (const p of pairs) out.push(await this.grantsSource.grants(em, p.sub, p.period));
    return out;
  }

  /** The pure part: the rating core over the loaded inputs. */
  rate(sub: SubscriptionRow, period: PeriodRow, segments: readonly StateSegment[], usage: DimensionUsage[], grants: AllowanceGrant[]): AllowanceStates {
    return periodAllowanceStates({
      subscription_id: sub.id,
      subscription_start: sub.startedAt.toISOString(),
      anchor_day: sub.anchorDay,
      period: { start: period.start.toISOString(), end: period.end.toISOString() },
      segments: segments as StateSegment[],
      usage,
      grants,
    });
  }

  /**
   * `rate` remembered under everything it reads: the rating core is a pure function of the
   * subscription's start and anchor, the period, the segments (named by their terms key), the usage
   * and the grants. Between two recomputes of a pair, reads ask the same question again.
   */
  rateTerms(sub: SubscriptionRow, period: PeriodRow, terms: PeriodTerms, usage: DimensionUsage[], grants: AllowanceGrant[]): AllowanceStates {
    if (!terms.key) return this.rate(sub, period, terms.segments, usage, grants);
    const key = JSON.stringify([sub.id, sub.startedAt.toISOString(), sub.anchorDay, period.start.toISOString(), period.end.toISOString(), terms.key, usage, grants]);
    const hit = this.ratings.get(key);
    if (hit) return hit;
    const states = deepFreeze(this.rate(sub, period, terms.segments, usage, grants));
    this.ratings.set(key, states);
    return states;
  }

  /** The states in force over the period, as the period invoice rates them. */
  async segments(em: EntityManager, sub: SubscriptionRow, period: PeriodRow): Promise<StateSegment[]> {
    return [...(await this.loadTerms(em, [{ sub, period }]))[0].terms.segments];
  }

  /**
   * The period's terms, remembered under `termsKey` (`termsKeySql` of the subscription's rows as the
   * caller read them). On a miss they are loaded in one repeatable-read snapshot together with the
   * key of that snapshot, so what is remembered is exactly what those rows give; a key the caller
   * read a moment earlier that no longer matches is simply not stored.
   */
  async periodTerms(em: EntityManager, sub: SubscriptionRow, period: PeriodRow, termsKey: string): Promise<PeriodTerms> {
    const hit = this.terms_.get(periodTermsKey(sub.id, period.start, period.end, termsKey));
    if (hit) return hit;
    return em.fork().transactional(
      async (tx) => {
        const [row] = await tx.execute<{ terms_key: string }[]>(`select ${termsKeySql('x')} as terms_key from subscriptions x where x.id = ?::uuid`, [sub.id]);
        if (!row) throw new NotFoundError('subscription', sub.id);
        const [loaded] = await this.loadTerms(tx, [{ sub, period }]);
        if (!loaded.cacheable) return loaded.terms;
        const terms = deepFreeze({ key: row.terms_key, segments: loaded.terms.segments });
        this.terms_.set(periodTermsKey(sub.id, period.start, period.end, row.terms_key), terms);
        return terms;
      },
      { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
    );
  }

  /**
   * The terms of every pair, in their order (keyed '': the caller names them): the segments by the
   * subscriptions module (its rows read once for all pairs), the plan documents from memory or one
   * statement. `cacheable` is false when a draft document is used (it can change under the same rows).
   */
  private async loadTerms(em: EntityManager, pairs: readonly AllowancePair[]): Promise<{ terms: PeriodTerms; cacheable: boolean }[]> {
    const cut: StateSegmentAt[][] = (
      await this.subscriptions.segmentsAndEndMany(em, pairs.map((p) => ({ subscriptionId: p.sub.id, from: p.period.start, to: p.period.end })))
    ).map((x) => x.segments);
    // The catalog's documents (published ones remembered there); a version of another organization is a 404.
    const documents = await this.catalog.ratingPlanDocuments(
      em,
      pairs.flatMap((p, i) => cut[i].map((s) => ({ id: s.state.planVersionId, organizationId: p.sub.organizationId }))),
    );
    return pairs.map((p, i) => {
      let cacheable = true;
      const segments: StateSegment[] = [];
      for (const s of cut[i]) {
        const d = documents.get(s.state.planVersionId)!;
        cacheable &&= d.published;
        const planChange = s.changes.find((c) => c.kind === 'plan');
        segments.push({
          ...toRatingState(d.document, s.state.seats, s.state.addons),
          from: s.from.toISOString(),
          ...(planChange && segments.length ? { transition: planChange.data.direction as TransitionKind } : {}),
        });
      }
      return { terms: { key: '', segments }, cacheable };
    });
  }

}


