import { Controller, Get, Param } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, pageSchema, Roles, ValidationError, ZQuery, type Principal } from '@closebook/platform';
import { assertPeriod, LedgerPeriodsService, LedgerReportsService, LedgerService, RevenueRecognitionService } from '@closebook/ledger';
import {
  accountsQuery,
  accountView,
  entriesQuery,
  entryView,
  periodSummaryView,
  periodView,
  presentAccount,
  presentEntry,
  presentPeriod,
  presentPeriodSummary,
  presentSchedule,
  presentScheduleProgress,
  presentTrialBalance,
  scheduleProgressView,
  schedulesQuery,
  scheduleView,
  trialBalanceQuery,
  trialBalanceView,
} from './ledger.views';

const TAGS = ['ledger'];

/** Ledger reports (read-only): accounts, entries, trial balance, periods, deferral schedules. */
@Controller('ledger')
@Roles('finance', 'auditor')
export class LedgerController {
  constructor(
    private readonly ledger: LedgerService,
    private readonly reports: LedgerReportsService,
    private readonly periods: LedgerPeriodsService,
    private readonly recognition: RevenueRecognitionService,
    private readonly em: EntityManager,
  ) {}

  @Get('accounts')
  @ApiRoute({
    summary: 'The chart of accounts per currency, with each account’s balance (net debit, as of a date or now)',
    tags: TAGS,
    response: z.object({ data: z.array(accountView) }),
  })
  async accounts(@Caller() caller: Principal, @ZQuery(accountsQuery) q: z.infer<typeof accountsQuery>) {
    const rows = await this.reports.accounts(this.em, caller.organizationId, { currency: q.currency, asOf: q.as_of });
    return { data: rows.map(presentAccount) };
  }

  @Get('entries')
  @ApiRoute({
    summary: 'Journal entries with their lines, newest posting first (filter by period, source, account, party)',
    tags: TAGS,
    response: pageSchema(entryView),
  })
  async entries(@Caller() caller: Principal, @ZQuery(entriesQuery) q: z.infer<typeof entriesQuery>) {
    const page = await this.reports.entries(this.em, caller.organizationId, {
      period: q.period,
      sourceType: q.source_type,
      sourceId: q.source_id,
      accountCode: q.account_code,
      partyId: q.party_id,
      limit: q.limit,
      cursor: q.cursor,
    });
    return { data: page.data.map(presentEntry), next_cursor: page.nextCursor };
  }

  @Get('entries/:id')
  @ApiRoute({ summary: 'One journal entry with its lines', tags: TAGS, response: entryView })
  async entry(@Caller() caller: Principal, @Param('id') id: string) {
    return presentEntry(await this.ledger.getEntry(this.em, caller.organizationId, id));
  }

  @Get('trial-balance')
  @ApiRoute({
    summary: 'Trial balance of a month: per account opening, debits, credits, closing; the receivables sub-ledger per customer; totals',
    description:
      'Balances are net debit balances (debits − credits; a credit balance is negative), so opening and closing totals are zero and debits equal credits when the books balance.',
    tags: TAGS,
    response: trialBalanceView,
  })
  async trialBalance(@Caller() caller: Principal, @ZQuery(trialBalanceQuery) q: z.infer<typeof trialBalanceQuery>) {
    return presentTrialBalance(await this.reports.trialBalance(this.em, caller.organizationId, q.period, { currency: q.currency }));
  }

  @Get('periods')
  @ApiRoute({ summary: 'Accounting periods (months), newest first, with their status and entry counts', tags: TAGS, response: z.object({ data: z.array(periodSummaryView) }) })
  async listPeriods(@Caller() caller: Principal) {
    return { data: (await this.periods.list(this.em, caller.organizationId)).map(presentPeriodSummary) };
  }

  @Get('periods/:period')
  @ApiRoute({ summary: 'The status of one month (open, closing or closed)', tags: TAGS, response: periodView })
  async period(@Caller() caller: Principal, @Param('period') period: string) {
    let p: string;
    try {
      p = assertPeriod(period);
    } catch {
      throw new ValidationError('invalid_period', 'period must be a month as YYYY-MM', 'period');
    }
    return presentPeriod(await this.periods.status(this.em, caller.organizationId, p));
  }

  @Get('deferral-schedules')
  @ApiRoute({ summary: 'Deferral schedules (revenue billed in advance), newest first', tags: TAGS, response: pageSchema(scheduleView) })
  async schedules(@Caller() caller: Principal, @ZQuery(schedulesQuery) q: z.infer<typeof schedulesQuery>) {
    const page = await this.recognition.listSchedules(this.em, caller.organizationId, {
      sourceType: q.source_type,
      sourceId: q.source_id,
      limit: q.limit,
      cursor: q.cursor,
    });
    return { data: page.data.map(presentSchedule), next_cursor: page.nextCursor };
  }

  @Get('deferral-schedules/:id')
  @ApiRoute({ summary: 'A deferral schedule with its monthly plan and the recognition entry of each month', tags: TAGS, response: scheduleProgressView })
  async schedule(@Caller() caller: Principal, @Param('id') id: string) {
    return presentScheduleProgress(await this.recognition.getSchedule(this.em, caller.organizationId, id));
  }
}
