import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec } from '@closebook/money';

export interface ConversionCohort {
  cohort_month: string;
  subscriptions_started: number;
  conversions: number;
  /** conversions ÷ subscriptions started, as a decimal string with 4 places; null when none started. */
  conversion_rate: string | null;
  avg_days_to_convert: string | null;
  median_days_to_convert: string | null;
}

/** Conversions per cohort month (the month subscriptions started) and days to convert (SPEC §2). */
@Injectable()
export class AnalyticsService {
  async conversions(em: EntityManager, organizationId: string, q: { from?: string; to?: string } = {}): Promise<ConversionCohort[]> {
    const rows = await em.execute<{ cohort_month: string; started: number; conversions: number; avg_days: string | null; median_days: string | null }[]>(
      `with started as (
         select to_char(started_at at time zone 'UTC', 'YYYY-MM') as cohort_month, count(*)::int as started
         from subscriptions where organization_id = ? group by 1
       ), conv as (
         select cohort_month, count(*)::int as conversions, round(avg(days_to_convert), 2)::text as avg_days,
                (percentile_cont(0.5) within group (order by days_to_convert))::numeric(12, 1)::text as median_days
         from subscription_conversions where organization_id = ? group by 1
       )
       select coalesce(s.cohort_month, c.cohort_month) as cohort_month, coalesce(s.started, 0) as started,
              coalesce(c.conversions, 0) as conversions, c.avg_days, c.median_days
       from started s full join conv c on c.cohort_month = s.cohort_month
       where (?::text is null or coalesce(s.cohort_month, c.cohort_month) >= ?) and (?::text is null or coalesce(s.cohort_month, c.cohort_month) <= ?)
       order by 1`,
      [organizationId, organizationId, q.from ?? null, q.from ?? null, q.to ?? null, q.to ?? null],
    );
    return rows.map((r) => ({
      cohort_month: r.cohort_month,
      subscriptions_started: r.started,
      conversions: r.conversions,
      conversion_rate: r.started > 0 ? dec(r.conversions).div(r.started).toFixed(4) : null,
      avg_days_to_convert: r.avg_days,
      median_days_to_convert: r.median_days,
    }));
  }
}
