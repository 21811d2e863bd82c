import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { formatDecimal, dec } from '@closebook/money';
import { resolvePeriod } from '../allowance/allowance-state.service';
import { BillingSources } from '../catalog/billing-sources';
import { RollupsService } from './rollups.service';

export interface UsageView {
  subscription_id: string;
  period: { start: string; end: string };
  /** When the period was last rolled up (null: not yet). */
  computed_at: string | null;
  /** True when events arrived after that and the next recompute is pending. */
  pending: boolean;
  data: {
    id: string;
    product_id: string;
    product_key: string;
    price_key: string | null;
    aggregation: string;
    count: string;
    aggregate: string;
    digest: string;
    computed_at: string;
  }[];
}

/** The rollups of a subscription's period, as stored (GET /v1/subscriptions/{id}/usage). */
@Injectable()
export class UsageService {
  constructor(private readonly rollups: RollupsService) {}

  async forSubscription(em: EntityManager, organizationId: string, subscriptionId: string, opts: { periodStart?: string; now?: Date } = {}): Promise<UsageView> {
    const sub = await BillingSources.subscription(em, organizationId, subscriptionId);
    const period = await resolvePeriod(em, sub, opts.periodStart, opts.now ?? new Date());
    const [rows, fresh] = [await this.rollups.stored(em, sub.id, period.start), await this.rollups.freshness(em, sub.id, period.start)];
    return {
      subscription_id: sub.id,
      period: { start: period.start.toISOString(), end: period.end.toISOString() },
      computed_at: fresh.computed_at ? new Date(fresh.computed_at).toISOString() : null,
      pending: fresh.dirty,
      data: rows.map((r) => ({
        id: r.id,
        product_id: r.product_id,
        product_key: r.product_key,
        price_key: r.price_key === '' ? null : r.price_key,
        aggregation: r.aggregation,
        count: r.event_count,
        aggregate: formatDecimal(dec(r.aggregate)),
        digest: r.digest,
        computed_at: new Date(r.computed_at).toISOString(),
      })),
    };
  }
}
