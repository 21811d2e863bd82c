import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { MoneyError } from '@closebook/money';
import { NotFoundError, UnprocessableError, ValidationError } from '@closebook/platform';
import { CustomersService } from '@closebook/subscriptions';
import { BillingSources, type PeriodRow, type SubscriptionRow } from '../catalog/billing-sources';
import { RollupsService } from '../rollups/rollups.service';
import { type AllowanceStates, type DimensionUsage } from './allowance-calculator';
import { AllowanceEngine } from './allowance-engine';

/** Live recomputation is used for freshness only while a period's events stay under this many. */
export const LIVE_ESTIMATE_MAX_EVENTS = 250_000;

export interface AllowanceStateView extends AllowanceStates {
  subscription_id: string;
  customer_id: string;
  period: { start: string; end: string };
  /** The instant the figures describe. */
  as_of: string;
  /** 'rollups' (stored, as of their computation) or 'live' (recomputed from raw events just now). */
  source: 'rollups' | 'live';
  estimate: true;
}

/** "78% of bandwidth used, $12.40 overage so far" for a subscription's current (or given) period. */
@Injectable()
export class AllowanceStateService {
  constructor(
    private readonly rollups: RollupsService,
    private readonly engine: AllowanceEngine,
    private readonly customers: CustomersService,
  ) {}

  async forSubscription(
    em: EntityManager,
    organizationId: string,
    customerRef: string,
    subscriptionId: string,
    opts: { periodStart?: string; now?: Date } = {},
  ): Promise<AllowanceStateView> {
    const customer = await this.customers.get(em, organizationId, customerRef);
    const sub = await BillingSources.subscription(em, organizationId, subscriptionId);
    if (sub.customerId !== customer.id) throw new NotFoundError('subscription', subscriptionId);
    const period = await resolvePeriod(em, sub, opts.periodStart, opts.now ?? new Date());

    const fresh = await this.rollups.freshness(em, sub.id, period.start);
    let usage: DimensionUsage[];
    let asOf: Date | string;
    let source: 'rollups' | 'live';
    const stored = await this.rollups.stored(em, sub.id, period.start);
    const storedEvents = stored.reduce((n, r) => n + Number(r.event_count), 0);
    if ((fresh.dirty || !fresh.computed_at) && storedEvents <= LIVE_ESTIMATE_MAX_EVENTS) {
      const [now] = await em.execute<{ now: string }[]>('select statement_timestamp() as now');
      const live = await this.rollups.compute(em, sub.id, period.start);
      usage = live.map((r) => ({ product_key: r.product_key, price_key: r.price_key, quantity: r.aggregate }));
      asOf = now.now;
      source = 'live';
    } else {
      usage = stored.map((r) => ({ product_key: r.product_key, price_key: r.price_key, quantity: r.aggregate }));
      asOf = fresh.computed_at ?? new Date();
      source = 'rollups';
    }
    let states: AllowanceStates;
    try {
      states = await this.engine.states(em, sub, period, usage);
    } catch (err) {
      if (err instanceof MoneyError) {
        throw new UnprocessableError('allowance_state_unavailable', `The plan or period cannot be rated: ${err.message}`, undefined, { code: err.code });
      }
      throw err;
    }
    return {
      subscription_id: sub.id,
      customer_id: customer.id,
      period: { start: period.start.toISOString(), end: period.end.toISOString() },
      as_of: new Date(asOf).toISOString(),
      source,
      estimate: true,
      ...states,
    };
  }
}

/** The period starting on `periodStart` (YYYY-MM-DD), else the one containing now, else the latest one. */
export async function resolvePeriod(em: EntityManager, sub: SubscriptionRow, periodStart: string | undefined, now: Date): Promise<PeriodRow> {
  if (periodStart !== undefined) {
    const start = new Date(`${periodStart}T00:00:00.000Z`);
    if (Number.isNaN(start.getTime())) throw new ValidationError('invalid_value', 'period must be a date YYYY-MM-DD', 'period');
    const p = await BillingSources.periodStarting(em, sub.id, start);
    if (!p) throw new UnprocessableError('unknown_period', `subscription ${sub.id} has no billing period starting ${periodStart}`, 'period');
    return p;
  }
  const p = (await BillingSources.periodAt(em, sub.id, now)) ?? (await BillingSources.latestPeriod(em, sub.id, now));
  if (!p) throw new UnprocessableError('no_current_period', `subscription ${sub.id} has no billing period yet`, 'period');
  return p;
}
