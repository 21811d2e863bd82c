import { z } from 'zod';
import { Money } from '@closebook/money';
import { paginationQuery, periodString } from '@closebook/platform';
import {
  accountDefinition,
  type AccountView,
  type BalanceRow,
  type DeferralScheduleView,
  type PeriodState,
  type PeriodSummary,
  type PostedEntry,
  type ScheduleProgress,
  type TrialBalance,
} from '@closebook/ledger';

// ---- queries -----------------------------------------------------------------------------------

const currencyCode = z.string().regex(/^[A-Z]{3}$/, { message: 'must be an ISO 4217 code such as USD' });

export const accountsQuery = z.object({ currency: currencyCode.optional(), as_of: z.iso.date().optional() }).strict();

export const entriesQuery = z
  .object({
    ...paginationQuery,
    period: periodString().optional(),
    source_type: z.string().min(1).max(100).optional(),
    source_id: z.string().min(1).max(200).optional(),
    account_code: z.string().min(1).max(20).optional(),
    party_id: z.uuid().optional(),
  })
  .strict();

export const trialBalanceQuery = z.object({ period: periodString(), currency: currencyCode.optional() }).strict();

export const schedulesQuery = z
  .object({ ...paginationQuery, source_type: z.string().min(1).max(100).optional(), source_id: z.string().min(1).max(200).optional() })
  .strict();

// ---- views -------------------------------------------------------------------------------------

export const moneyView = z.object({ amount: z.string(), currency: z.string() });
const money = (m: Money) => m.toJSON();
const iso = (d: Date | null) => (d ? d.toISOString() : null);

export const accountView = z.object({
  id: z.string(),
  currency: z.string(),
  code: z.string(),
  name: z.string(),
  type: z.string(),
  normal_balance: z.enum(['debit', 'credit']),
  requires_party: z.boolean(),
  balance: moneyView,
});

export const presentAccount = (a: AccountView) => ({
  id: a.id,
  currency: a.currency,
  code: a.code,
  name: a.name,
  type: a.type,
  normal_balance: a.normalBalance,
  requires_party: a.requiresParty,
  balance: money(a.balance),
});

const lineView = z.object({
  line_no: z.number(),
  account_code: z.string(),
  account_name: z.string(),
  party_id: z.string().nullable(),
  debit: moneyView,
  credit: moneyView,
  memo: z.string().nullable(),
});

export const entryView = z.object({
  id: z.string(),
  key: z.string(),
  date: z.string(),
  period: z.string(),
  currency: z.string(),
  source_type: z.string(),
  source_id: z.string(),
  description: z.string(),
  reverses_entry_id: z.string().nullable(),
  corrects_period: z.string().nullable(),
  total: moneyView,
  created_at: z.string(),
  lines: z.array(lineView),
});

export const presentEntry = (e: PostedEntry) => ({
  id: e.id,
  key: e.key,
  date: e.date,
  period: e.date.slice(0, 7),
  currency: e.currency,
  source_type: e.sourceType,
  source_id: e.sourceId,
  description: e.description,
  reverses_entry_id: e.reversesEntryId,
  corrects_period: e.correctsPeriod,
  total: money(Money.fromMinorUnits(e.lines.reduce((s, l) => s + l.debit, 0n), e.currency)),
  created_at: e.createdAt.toISOString(),
  lines: e.lines.map((l) => ({
    line_no: l.lineNo,
    account_code: l.accountCode,
    account_name: accountDefinition(l.accountCode)?.name ?? l.accountCode,
    party_id: l.partyId,
    debit: money(Money.fromMinorUnits(l.debit, e.currency)),
    credit: money(Money.fromMinorUnits(l.credit, e.currency)),
    memo: l.memo,
  })),
});

const balanceView = z.object({ opening: moneyView, debits: moneyView, credits: moneyView, closing: moneyView });
const presentBalance = (b: BalanceRow) => ({ opening: money(b.opening), debits: money(b.debits), credits: money(b.credits), closing: money(b.closing) });

export const trialBalanceView = z.object({
  period: z.string(),
  from: z.string(),
  to: z.string(),
  status: z.enum(['open', 'closing', 'closed']),
  currencies: z.array(
    z.object({
      currency: z.string(),
      accounts: z.array(balanceView.extend({ code: z.string(), name: z.string(), type: z.string(), normal_balance: z.string() })),
      sub_ledgers: z.array(
        z.object({
          account_code: z.string(),
          account_name: z.string(),
          parties: z.array(balanceView.extend({ party_id: z.string() })),
          total: balanceView,
          ties_to_control: z.boolean(),
        }),
      ),
      totals: balanceView,
      balanced: z.boolean(),
    }),
  ),
});

export const presentTrialBalance = (tb: TrialBalance) => ({
  period: tb.period,
  from: tb.from,
  to: tb.to,
  status: tb.status,
  currencies: tb.currencies.map((c) => ({
    currency: c.currency,
    accounts: c.accounts.map((a) => ({ code: a.code, name: a.name, type: a.type, normal_balance: a.normalBalance, ...presentBalance(a) })),
    sub_ledgers: c.subLedgers.map((s) => ({
      account_code: s.accountCode,
      account_name: s.accountName,
      parties: s.parties.map((p) => ({ party_id: p.partyId, ...presentBalance(p) })),
      total: presentBalance(s.total),
      ties_to_control: s.tiesToControl,
    })),
    totals: presentBalance(c.totals),
    balanced: c.balanced,
  })),
});

export const periodView = z.object({
  period: z.string(),
  status: z.enum(['open', 'closing', 'closed']),
  closing_started_at: z.string().nullable(),
  closed_at: z.string().nullable(),
  reopened_at: z.string().nullable(),
  reopen_reason: z.string().nullable(),
});

export const presentPeriod = (p: PeriodState) => ({
  period: p.period,
  status: p.status,
  closing_started_at: iso(p.closingStartedAt),
  closed_at: iso(p.closedAt),
  reopened_at: iso(p.reopenedAt),
  reopen_reason: p.reopenReason,
});

export const periodSummaryView = periodView.extend({ entry_count: z.number(), correction_count: z.number() });

export const presentPeriodSummary = (p: PeriodSummary) => ({ ...presentPeriod(p), entry_count: p.entryCount, correction_count: p.correctionCount });

export const scheduleView = z.object({
  id: z.string(),
  key: z.string(),
  currency: z.string(),
  source_type: z.string(),
  source_id: z.string(),
  description: z.string(),
  total: moneyView,
  service_start: z.string(),
  service_end: z.string(),
  from_account: z.string(),
  to_account: z.string(),
  party_id: z.string().nullable(),
  final_period: z.string(),
  created_at: z.string(),
});

export const presentSchedule = (s: DeferralScheduleView) => ({
  id: s.id,
  key: s.key,
  currency: s.currency,
  source_type: s.sourceType,
  source_id: s.sourceId,
  description: s.description,
  total: money(s.total),
  service_start: s.serviceStart,
  service_end: s.serviceEnd,
  from_account: s.fromAccount,
  to_account: s.toAccount,
  party_id: s.partyId,
  final_period: s.finalPeriod,
  created_at: s.createdAt.toISOString(),
});

export const scheduleProgressView = scheduleView.extend({
  recognized: moneyView,
  remaining: moneyView,
  months: z.array(z.object({ period: z.string(), amount: moneyView, entry_id: z.string().nullable(), entry_date: z.string().nullable() })),
});

export const presentScheduleProgress = (s: ScheduleProgress) => ({
  ...presentSchedule(s),
  recognized: money(s.recognized),
  remaining: money(s.remaining),
  months: s.months.map((m) => ({ period: m.period, amount: money(m.amount), entry_id: m.entryId, entry_date: m.entryDate })),
});
