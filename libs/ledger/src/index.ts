/**
 * @closebook/ledger — the generic double-entry engine. Rules and semantics: docs/ledger.md.
 */
export { LedgerModule, LEDGER_ENTITIES } from './ledger.module';
export { LedgerService, accrualKey } from './ledger.service';
export type { PostedEntry, PostedLine, ReverseInput, AccrualInput, ReverseAccrualInput } from './ledger.service';
export { LedgerPeriodsService } from './periods.service';
export type { PeriodState, PeriodSummary } from './periods.service';
export { LedgerReportsService } from './reports.service';
export type {
  AccountView,
  BalanceRow,
  TrialBalance,
  TrialBalanceAccount,
  TrialBalanceCurrency,
  SubLedgerParty,
  EntryFilter,
} from './reports.service';
export { RevenueRecognitionService, recognitionKey, recognitionJobId } from './recognition.service';
export type { CreateScheduleInput, DeferralScheduleView, ScheduleProgress, RecognitionRunResult } from './recognition.service';
export { RevenueRecognitionJobs } from './recognition.jobs';

export { ACCOUNTS, STANDARD_CHART, ACCOUNT_TYPES, NORMAL_BALANCES, accountDefinition, isAccountCode } from './chart';
export type { AccountCode, AccountDefinition, AccountType, NormalBalance } from './chart';
export { normalizeEntry, reversedLines, sameEffect, MAX_LINES_PER_ENTRY } from './posting';
export type { PostEntryInput, PostingLine, PostingSource, LineAmount, NormalizedEntry, NormalizedLine } from './posting';
export { recognitionShares, recognitionCycles, recognitionWeights } from './recognition';
export type { RecognitionShare, RecognitionCycle } from './recognition';
export { LedgerInputError } from './errors';
export {
  toDate,
  periodOf,
  firstDay,
  lastDay,
  addPeriods,
  addMonths,
  periodsBetween,
  assertPeriod,
  isPeriod,
} from './dates';
export type { DateString, PeriodString } from './dates';

export { LedgerAccount } from './entities/ledger-account.entity';
export { JournalEntry } from './entities/journal-entry.entity';
export { JournalLine } from './entities/journal-line.entity';
export { AccountingPeriod, PERIOD_STATUSES } from './entities/accounting-period.entity';
export type { PeriodStatus } from './entities/accounting-period.entity';
export { DeferralSchedule } from './entities/deferral-schedule.entity';
