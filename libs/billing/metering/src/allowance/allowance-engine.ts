import { Inject, Injectable, Optional } from '@nestjs/common';
import { IsolationLevel } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CatalogService } from '@closebook/catalog';
import { NotFoundError } from '@closebook/platform';
import { SubscriptionsService, toRatingState, type StateSegmentAt } from '@closebook/subscriptions';
import type { AllowanceGrant, RatingPlanVersion, StateSegment, TransitionKind } from '@closebook/rating';
import type { PeriodRow, SubscriptionRow } from '../catalog/billing-sources';
import { periodAllowanceStates, type AllowanceStates, type DimensionUsage } from './allowance-calculator';
import { ALLOWANCE_GRANTS_SOURCE, TableAllowanceGrantsSource, type AllowanceGrantsSource } from './allowance-grants';
import { deepFreeze, Lru, periodTermsKey, termsKeySql, type PeriodTerms } from './allowance-terms';

export { ALLOWANCE_GRANTS_SOURCE, TableAllowanceGrantsSource, type AllowanceGrantsSource } from './allowance-grants';

/** Entries, not bytes: a period's segments share their (remembered) plan documents. */
const TERMS_CACHE_ENTRIES = 20_000;
const PLAN_DOCUMENTS_CACHE_ENTRIES = 2_000;
/** An answer is ~1–2 KB. */
const RATINGS_CACHE_ENTRIES = 10_000;

/**
 * Loads what the allowance state of a (subscription, period) depends on — the subscription's terms
 * over the period as segments (plan version, seats, add-ons from its recorded changes, the
 * subscriptions module's rule), the pinned plan documents, carried-in grants — and hands them with
 * the usage quantities to the pure calculator, which rates them with `ratePeriodInvoice`.
 */
@Injectable()
export class AllowanceEngine {
  readonly grantsSource: AllowanceGrantsSource;
  private readonly terms_ = new Lru<PeriodTerms>(TERMS_CACHE_ENTRIES);
  private readonly documents = new Lru<RatingPlanVersion>(PLAN_DOCUMENTS_CACHE_ENTRIES);
  private readonly ratings = new Lru<AllowanceStates>(RATINGS_CACHE_ENTRIES);

  constructor(
    private readonly subscriptions: SubscriptionsService,
    private readonly catalog: CatalogService,
    @Optional() @Inject(ALLOWANCE_GRANTS_SOURCE) grantsSource?: AllowanceGrantsSource,
  ) {
    this.grantsSource = grantsSource ?? new TableAllowanceGrantsSource();
  }

  async states(em: EntityManager, sub: SubscriptionRow, period: PeriodRow, usage: DimensionUsage[], loaded?: StateSegmentAt[]): Promise<AllowanceStates> {
    const segments = await this.segments(em, sub, period, loaded);
    const grants = await this.grantsSource.grants(em, sub, period);
    return this.rate(sub, period, segments, usage, grants);
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
  async segments(em: EntityManager, sub: SubscriptionRow, period: PeriodRow, loaded?: StateSegmentAt[]): Promise<StateSegment[]> {
    return (await this.loadTerms(em, sub, period, loaded)).terms.segments;
  }

  /**
   * The period's terms, remembered under `termsKey` (`termsKeySql` of the subscription's rows as the
   * caller read them). On a miss they are loaded by the subscriptions module in one repeatable-read
   * snapshot together with the key of that snapshot, so what is remembered is exactly what those
   * rows give; a key the caller read a moment earlier that no longer matches is simply not stored.
   */
  async periodTerms(em: EntityManager, sub: SubscriptionRow, period: PeriodRow, termsKey: string): Promise<PeriodTerms> {
    const hit = this.terms_.get(periodTermsKey(sub.id, period.start, period.end, termsKey));
    if (hit) return hit;
    return em.fork().transactional(
      async (tx) => {
        const [row] = await tx.execute<{ terms_key: string }[]>(`select ${termsKeySql('x')} as terms_key from subscriptions x where x.id = ?::uuid`, [sub.id]);
        if (!row) throw new NotFoundError('subscription', sub.id);
        const loaded = await this.loadTerms(tx, sub, period, undefined, row.terms_key);
        if (loaded.cacheable) this.terms_.set(periodTermsKey(sub.id, period.start, period.end, row.terms_key), deepFreeze(loaded.terms));
        return loaded.terms;
      },
      { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
    );
  }

  /** The subscription's terms over the period (the subscriptions module's segments). */
  terms(em: EntityManager, subscriptionId: string, period: PeriodRow): Promise<StateSegmentAt[]> {
    return this.subscriptions.segments(em, subscriptionId, period.start, period.end);
  }

  private async loadTerms(em: EntityManager, sub: SubscriptionRow, period: PeriodRow, loaded?: StateSegmentAt[], key = '') {
    let cacheable = true;
    const doc = async (id: string) => {
      const d = await this.planDocument(em, id, sub.organizationId);
      cacheable &&= d.published;
      return d.document;
    };
    const segs = loaded ?? (await this.terms(em, sub.id, period));
    const segments: StateSegment[] = [];
    for (const s of segs) {
      const planChange = s.changes.find((c) => c.kind === 'plan');
      segments.push({
        ...toRatingState(await doc(s.state.planVersionId), s.state.seats, s.state.addons),
        from: s.from.toISOString(),
        ...(planChange && segments.length ? { transition: planChange.data.direction as TransitionKind } : {}),
      });
    }
    // A draft document can change under the same rows: such terms carry no key, so nothing built on them is remembered.
    return { terms: { key: cacheable ? key : '', segments } as PeriodTerms & { segments: StateSegment[] }, cacheable };
  }

  /** A plan version's document; published ones are frozen in the database, so they are remembered. */
  private async planDocument(em: EntityManager, id: string, organizationId: string): Promise<{ document: RatingPlanVersion; published: boolean }> {
    const key = `${organizationId}|${id}`;
    const hit = this.documents.get(key);
    if (hit) return { document: hit, published: true };
    const version = await this.catalog.planVersionById(em, id, organizationId);
    if (version.status !== 'published') return { document: version.document, published: false };
    // A copy: the entity stays the ORM's to manage, the remembered document is ours to freeze.
    const document = deepFreeze(structuredClone(version.document));
    this.documents.set(key, document);
    return { document, published: true };
  }
}
