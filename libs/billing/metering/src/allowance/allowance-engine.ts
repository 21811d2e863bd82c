import { Inject, Injectable, Optional } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SubscriptionsService } from '@closebook/subscriptions';
import type { AllowanceGrant } from '@closebook/rating';
import { BillingSources, type PeriodRow, type SubscriptionRow } from '../catalog/billing-sources';
import { allowanceStates, type AllowanceStates, type DimensionUsage } from './allowance-calculator';

/**
 * Where carried-in allowance grants come from. Until the rollover ledger lands (a later issue) the
 * default reads a table `allowance_grants (organization_id, subscription_id, "grant" jsonb)` when it
 * exists — one rollover AllowanceGrant JSON per row — and otherwise grants nothing (rolled_over = 0).
 */
export interface AllowanceGrantsSource {
  grants(em: EntityManager, sub: SubscriptionRow, period: PeriodRow): Promise<AllowanceGrant[]>;
}
export const ALLOWANCE_GRANTS_SOURCE = Symbol('ALLOWANCE_GRANTS_SOURCE');

export class TableAllowanceGrantsSource implements AllowanceGrantsSource {
  async grants(em: EntityManager, sub: SubscriptionRow): Promise<AllowanceGrant[]> {
    const [reg] = await em.execute<{ t: string | null }[]>(`select to_regclass('allowance_grants')::text as t`);
    if (!reg?.t) return [];
    const rows = await em.execute<{ grant: AllowanceGrant }[]>(
      `select "grant" from allowance_grants where organization_id = ?::uuid and subscription_id = ?::uuid and "grant"->>'kind' = 'rollover'`,
      [sub.organizationId, sub.id],
    );
    return rows.map((r) => r.grant);
  }
}

/**
 * Loads what the allowance state of a (subscription, period) depends on — the pinned plan version,
 * seats in force over the period (from the subscription's recorded changes), carried-in grants —
 * and runs the pure calculator over the given usage quantities.
 */
@Injectable()
export class AllowanceEngine {
  private readonly grantsSource: AllowanceGrantsSource;

  constructor(
    private readonly subscriptions: SubscriptionsService,
    @Optional() @Inject(ALLOWANCE_GRANTS_SOURCE) grantsSource?: AllowanceGrantsSource,
  ) {
    this.grantsSource = grantsSource ?? new TableAllowanceGrantsSource();
  }

  async states(em: EntityManager, sub: SubscriptionRow, period: PeriodRow, usage: DimensionUsage[]): Promise<AllowanceStates> {
    const plan = await BillingSources.planDocument(em, sub.organizationId, sub.planVersionId);
    const seatSegments = await this.seatSegments(em, sub, period);
    const grants = await this.grantsSource.grants(em, sub, period);
    return allowanceStates({
      subscription_id: sub.id,
      plan,
      seats: seatSegments[0].seats,
      seat_segments: seatSegments,
      anchor_day: sub.anchorDay,
      period: { start: period.start.toISOString(), end: period.end.toISOString() },
      usage,
      grants,
    });
  }

  /** Seats at the period start, then at each recorded seat change inside the period (the subscriptions module's rule). */
  async seatSegments(em: EntityManager, sub: SubscriptionRow, period: PeriodRow): Promise<{ from: string; seats: number }[]> {
    const first = await this.subscriptions.stateAt(em, sub.id, period.start, sub.organizationId);
    const segments = [{ from: period.start.toISOString(), seats: first.seats }];
    const changes = await em.execute<{ effective_at: Date }[]>(
      `select distinct effective_at from subscription_changes
       where subscription_id = ?::uuid and kind = 'seats' and effective_at > ?::timestamptz and effective_at < ?::timestamptz
       order by effective_at`,
      [sub.id, period.start.toISOString(), period.end.toISOString()],
    );
    for (const c of changes) {
      const at = new Date(c.effective_at);
      const state = await this.subscriptions.stateAt(em, sub.id, at, sub.organizationId);
      if (state.seats !== segments[segments.length - 1].seats) segments.push({ from: at.toISOString(), seats: state.seats });
    }
    return segments;
  }
}
