import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { LedgerAccount } from './entities/ledger-account.entity';
import { JournalEntry } from './entities/journal-entry.entity';
import { JournalLine } from './entities/journal-line.entity';
import { AccountingPeriod } from './entities/accounting-period.entity';
import { DeferralSchedule } from './entities/deferral-schedule.entity';
import { LedgerService } from './ledger.service';
import { LedgerPeriodsService } from './periods.service';
import { LedgerReportsService } from './reports.service';
import { RevenueRecognitionService } from './recognition.service';
import { RevenueRecognitionJobs } from './recognition.jobs';

export const LEDGER_ENTITIES = [LedgerAccount, JournalEntry, JournalLine, AccountingPeriod, DeferralSchedule];

const services = [LedgerService, LedgerPeriodsService, LedgerReportsService, RevenueRecognitionService];

/**
 * The generic double-entry ledger (accounts, journal entries, periods and locks, revenue
 * recognition, reports). It knows nothing of invoices: billing calls LedgerService and
 * RevenueRecognitionService inside its own transactions.
 */
@Module({
  imports: [MikroOrmModule.forFeature(LEDGER_ENTITIES)],
  providers: [...services, RevenueRecognitionJobs],
  exports: services,
})
export class LedgerModule {}
