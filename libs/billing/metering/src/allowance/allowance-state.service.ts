import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { MoneyError } from '@closebook/money';
import { NotFoundError, UnprocessableError, ValidationError } from '@closebook/platform';
import { BillingSources, type PeriodRow, type SubscriptionRow } from '../catalog/billing-sources';
import { type AllowanceStates, type DimensionUsage } from './allowance-calculator';
import { AllowanceEngine } from './allowance-engine';
import { TableAllowanceGrantsSource } from './allowance-grants';
import { loadAllowanceInputs, type StoredUsage } from './allowance-inputs';

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

const toUsage = (rows: StoredUsage[]): DimensionUsage[] => rows.map((r) => ({ product_key: r.product_key, price_key: r.price_key, quantity: r.aggregate }));

/**
 * "78% of bandwidth used, $12.40 overage so far" for a subscription's current (or given) period.
 * A read is one statement (`loadAllowanceInputs`: rows, freshness, stored or live rollups, grants)
 * plus the rating core; the period's segments come from memory under the key of the rows they are
 * made of (`AllowanceEngine.periodTerms`), so the subscriptions module is asked only when they change.
 */
@Injectable()
export class AllowanceStateService {
  constructor(private readonly engine: AllowanceEngine) {}

  async forSubscription(
    em: EntityManager,
    organizationId: string,
    customerRef: string,
    subscriptionId: string,
    opts: { periodStart?: string; now?: Date } = {},
  ): Promise<AllowanceStateView> {
    const periodStart = opts.periodStart === undefined ? null : new Date(`${opts.periodStart}T00:00:00.000Z`);
    const badPeriod = periodStart !== null && Number.isNaN(periodStart.getTime());
    const grantsSource = this.engine.grantsSource;
    const inputs = await loadAllowanceInputs(em, {
      organizationId,
      customerRef,
      subscriptionId,
      // An unusable date is reported after the 404s, as it always was; the epoch stands in meanwhile.
      periodStart: badPeriod ? new Date(0) : periodStart,
      now: opts.now ?? new Date(),
      grantsSql: grantsSource instanceof TableAllowanceGrantsSource ? grantsSource.foldable() : null,
      liveMaxEvents: LIVE_ESTIMATE_MAX_EVENTS,
    });
    if (!inputs.customerId) throw new NotFoundError('customer', customerRef);
    const sub = inputs.subscription;
    if (!sub || sub.customerId !== inputs.customerId) throw new NotFoundError('subscription', subscriptionId);
    if (badPeriod) throw new ValidationError('invalid_value', 'period must be a date YYYY-MM-DD', 'period');
    const period = inputs.period;
    if (!period) {
      if (opts.periodStart !== undefined) throw new UnprocessableError('unknown_period', `subscription ${sub.id} has no billing period starting ${opts.periodStart}`, 'period');
      throw new UnprocessableError('no_current_period', `subscription ${sub.id} has no billing period yet`, 'period');
    }

    let states: AllowanceStates;
    try {
      const terms = await this.engine.periodTerms(em, sub, period, inputs.termsKey!);
      const grants = inputs.grants ?? (await grantsSource.grants(em, sub, period));
      states = this.engine.rateTerms(sub, period, terms, toUsage(inputs.live ?? inputs.stored), grants);
    } catch (err) {
      if (err instanceof MoneyError) {
        throw new UnprocessableError('allowance_state_unavailable', `The plan or period cannot be rated: ${err.message}`, undefined, { code: err.code });
      }
      throw err;
    }
    return {
      subscription_id: sub.id,
      customer_id: inputs.customerId,
      period: { start: period.start.toISOString(), end: period.end.toISOString() },
      // Live: the statement's start, which precedes its snapshot (as before: "now", then the recompute).
      as_of: (inputs.live ? inputs.now : (inputs.computedAt ?? new Date())).toISOString(),
      source: inputs.live ? 'live' : 'rollups',
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
