import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { JobHandler } from '@closebook/platform';
import { BillingPeriodsService, periodHorizon } from './billing-periods.service';
import { SubscriptionsService } from './subscriptions.service';
import { Subscription } from './entities/subscription.entity';

/** Days past now beyond which a subscription whose periods end later certainly needs nothing. */
const LOOKAHEAD_DAYS = 32;
const BATCH = 500;

/** Job handlers of the subscriptions module (scheduled by SubscriptionsSchedulerModule in the worker). */
@Injectable()
export class SubscriptionsJobs {
  private readonly logger = new Logger('SubscriptionsJobs');

  constructor(
    private readonly em: EntityManager,
    private readonly periods: BillingPeriodsService,
    private readonly subscriptions: SubscriptionsService,
  ) {}

  /**
   * Keeps every active subscription's billing periods generated through the period after the one
   * containing now. Idempotent: periods are inserted with ON CONFLICT DO NOTHING.
   */
  @JobHandler('subscriptions.extend-periods')
  async extendPeriods(): Promise<{ subscriptions: number; periods: number }> {
    const now = new Date();
    let after = '00000000-0000-0000-0000-000000000000';
    let subscriptions = 0;
    let periods = 0;
    for (;;) {
      // Active subscriptions whose last period ends soon (or that have none), not ended already.
      const rows = await this.em.execute<{ id: string }[]>(
        `select s.id
         from subscriptions s
         left join lateral (select bp.period_end from billing_periods bp where bp.subscription_id = s.id order by bp.seq desc limit 1) last on true
         where s.status = 'active' and s.id > ?
           and (last.period_end is null or last.period_end <= now() + make_interval(days => ?))
           and (s.ends_at is null or last.period_end is null or last.period_end < s.ends_at)
         order by s.id
         limit ?`,
        [after, LOOKAHEAD_DAYS, BATCH],
      );
      if (!rows.length) break;
      after = rows[rows.length - 1].id;
      const subs = await this.em.find(Subscription, { id: { $in: rows.map((r) => r.id) } });
      for (const sub of subs) {
        const added = await this.em.transactional((tx) => this.periods.ensureFor(tx, sub, periodHorizon(sub, now)));
        if (added) subscriptions++;
        periods += added;
      }
      this.em.clear();
      if (rows.length < BATCH) break;
    }
    if (periods) this.logger.log({ subscriptions, periods }, 'billing periods generated');
    return { subscriptions, periods };
  }

  /** Applies seat and add-on changes recorded for the future once they fall due. */
  @JobHandler('subscriptions.apply-due-changes')
  async applyDueChanges(): Promise<{ applied: number }> {
    let applied = 0;
    for (;;) {
      const n = await this.subscriptions.applyDueChanges(this.em);
      applied += n;
      if (n < 500) break;
    }
    if (applied) this.logger.log({ applied }, 'scheduled subscription changes applied');
    return { applied };
  }
}
