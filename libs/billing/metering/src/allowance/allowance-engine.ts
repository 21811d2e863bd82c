import { Inject, Injectable, Optional } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { CatalogService } from '@closebook/catalog';
import { SubscriptionsService, toRatingState, type StateSegmentAt } from '@closebook/subscriptions';
import type { AllowanceGrant, RatingPlanVersion, StateSegment, TransitionKind } from '@closebook/rating';
import type { PeriodRow, SubscriptionRow } from '../catalog/billing-sources';
import { periodAllowanceStates, type AllowanceStates, type DimensionUsage } from './allowance-calculator';

/**
 * Where carried-in (rollover) allowance grants come from. The default reads the allowance ledger
 * the invoicing module keeps (`allowance_grants` with `allowance_drawdowns`), when those tables
 * exist: rollover grants live in the period, with `drawn_before` = what earlier periods drew.
 * Without them nothing is carried in (rolled_over = 0).
 */
export interface AllowanceGrantsSource {
  grants(em: EntityManager, sub: SubscriptionRow, period: PeriodRow): Promise<AllowanceGrant[]>;
}
export const ALLOWANCE_GRANTS_SOURCE = Symbol('ALLOWANCE_GRANTS_SOURCE');

export class TableAllowanceGrantsSource implements AllowanceGrantsSource {
  /** Tables, once seen, stay (a migration never drops them under a running process). */
  private seen: { g: string | null; d: string | null } | null = null;

  async grants(em: EntityManager, sub: SubscriptionRow, period: PeriodRow): Promise<AllowanceGrant[]> {
    let reg = this.seen;
    if (!reg) {
      [reg] = await em.execute<{ g: string | null; d: string | null }[]>(
        `select to_regclass('allowance_grants')::text as g, to_regclass('allowance_drawdowns')::text as d`,
      );
      if (reg.g && reg.d) this.seen = reg;
    }
    if (!reg?.g) return [];
    const start = period.start.toISOString();
    const drawn = reg.d
      ? `(select coalesce(sum(d.drawn), 0) from allowance_drawdowns d
           where d.subscription_id = g.subscription_id and d.grant_id = g.grant_id and d.period_start < ?::timestamptz)::text`
      : `'0'`;
    const rows = await em.execute<{ grant: AllowanceGrant; drawn_before: string }[]>(
      `select g."grant", ${drawn} as drawn_before from allowance_grants g
       where g.organization_id = ?::uuid and g.subscription_id = ?::uuid and g."grant"->>'kind' = 'rollover'
         and (g."grant"->>'granted_in_period')::timestamptz <= ?::timestamptz
         and (g."grant"->>'expires_after_period')::timestamptz >= ?::timestamptz
       order by g."grant"->>'grant_id'`,
      [...(reg.d ? [start] : []), sub.organizationId, sub.id, start, start],
    );
    return rows.map((r) => ({ ...r.grant, drawn_before: r.drawn_before }));
  }
}

/**
 * Loads what the allowance state of a (subscription, period) depends on — the subscription's terms
 * over the period as segments (plan version, seats, add-ons from its recorded changes, the
 * subscriptions module's rule), the pinned plan documents, carried-in grants — and hands them with
 * the usage quantities to the pure calculator, which rates them with `ratePeriodInvoice`.
 */
@Injectable()
export class AllowanceEngine {
  private readonly grantsSource: AllowanceGrantsSource;

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
    return periodAllowanceStates({
      subscription_id: sub.id,
      subscription_start: sub.startedAt.toISOString(),
      anchor_day: sub.anchorDay,
      period: { start: period.start.toISOString(), end: period.end.toISOString() },
      segments,
      usage,
      grants,
    });
  }

  /** The states in force over the period, as the period invoice rates them. */
  async segments(em: EntityManager, sub: SubscriptionRow, period: PeriodRow, loaded?: StateSegmentAt[]): Promise<StateSegment[]> {
    const docs = new Map<string, RatingPlanVersion>();
    const doc = async (id: string) => {
      if (!docs.has(id)) docs.set(id, await this.catalog.ratingPlanVersion(em, id, sub.organizationId));
      return docs.get(id)!;
    };
    const segs = loaded ?? (await this.terms(em, sub.id, period));
    const out: StateSegment[] = [];
    for (const s of segs) {
      const planChange = s.changes.find((c) => c.kind === 'plan');
      out.push({
        ...toRatingState(await doc(s.state.planVersionId), s.state.seats, s.state.addons),
        from: s.from.toISOString(),
        ...(planChange && out.length ? { transition: planChange.data.direction as TransitionKind } : {}),
      });
    }
    return out;
  }

  /** The subscription's terms over the period (the subscriptions module's segments). */
  terms(em: EntityManager, subscriptionId: string, period: PeriodRow): Promise<StateSegmentAt[]> {
    return this.subscriptions.segments(em, subscriptionId, period.start, period.end);
  }
}
