import { Controller, Get } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, pageSchema, READ_ROLES, Roles, toPage, ZQuery, type Principal } from '@closebook/platform';
import { AnalyticsService, LateUsageService } from '@closebook/invoicing';
import { conversionCohortView, conversionsQuery, lateUsageQuery, lateUsageView, presentCohort, presentLateUsage } from './invoicing.views';

@Controller()
export class InvoicingReportsController {
  constructor(private readonly analytics: AnalyticsService, private readonly lateUsage: LateUsageService, private readonly em: EntityManager) {}

  @Get('analytics/conversions')
  @Roles(...READ_ROLES)
  @ApiRoute({
    summary: 'Conversions from zero-fee plans per cohort month (month the subscription started) and days to convert',
    tags: ['analytics'],
    response: z.object({ data: z.array(conversionCohortView) }),
  })
  async conversions(@Caller() caller: Principal, @ZQuery(conversionsQuery) q: z.infer<typeof conversionsQuery>) {
    return { data: (await this.analytics.conversions(this.em, caller.organizationId, q)).map(presentCohort) };
  }

  @Get('late-usage')
  @Roles(...READ_ROLES)
  @ApiRoute({ summary: 'Usage that arrived after its period invoice was finalized, with the amount it would have billed', tags: ['invoices'], response: pageSchema(lateUsageView) })
  async late(@Caller() caller: Principal, @ZQuery(lateUsageQuery) q: z.infer<typeof lateUsageQuery>) {
    return toPage(await this.lateUsage.list(this.em, caller.organizationId, q), q.limit, presentLateUsage);
  }
}
