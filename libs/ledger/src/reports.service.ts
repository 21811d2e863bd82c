import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Money } from '@closebook/money';
import { decodeCursor, type Cursor } from '@closebook/platform';
import type { AccountType, NormalBalance } from './chart';
import { addPeriods, assertPeriod, firstDay, lastDay, type DateString, type PeriodString } from './dates';
import type { PeriodStatus } from './entities/accounting-period.entity';
import { ENTRY_SELECT, entriesFromRows, type PostedEntry } from './ledger.service';
import { LedgerPeriodsService } from './periods.service';
import { rawCursor } from './sql';

export interface AccountView {
  id: string;
  currency: string;
  code: string;
  name: string;
  type: AccountType;
  normalBalance: NormalBalance;
  requiresParty: boolean;
  /** Net debit balance (debits − credits) of every entry dated on or before `asOf`. */
  balance: Money;
}

export interface BalanceRow {
  /** Net debit balance before the period (debits − credits; negative = credit balance). */
  opening: Money;
  debits: Money;
  credits: Money;
  /** opening + debits − credits. */
  closing: Money;
}

export interface TrialBalanceAccount extends BalanceRow {
  code: string;
  name: string;
  type: AccountType;
  normalBalance: NormalBalance;
}

export interface SubLedgerParty extends BalanceRow {
  partyId: string;
}

export interface TrialBalanceCurrency {
  currency: string;
  accounts: TrialBalanceAccount[];
  /** The per-customer sub-ledger of each party-bearing control account (Accounts receivable). */
  subLedgers: { accountCode: string; accountName: string; parties: SubLedgerParty[]; total: BalanceRow; tiesToControl: boolean }[];
  /** Sums over all accounts: opening and closing are zero and debits equal credits when the books balance. */
  totals: BalanceRow;
  balanced: boolean;
}

export interface TrialBalance {
  period: PeriodString;
  from: DateString;
  to: DateString;
  status: PeriodStatus;
  currencies: TrialBalanceCurrency[];
}

export interface EntryFilter {
  period?: string;
  sourceType?: string;
  sourceId?: string;
  accountCode?: string;
  partyId?: string;
  limit: number;
  cursor?: string;
}

interface SumRow {
  currency: string;
  code: string;
  name: string;
  type: AccountType;
  normal_balance: NormalBalance;
  requires_party?: boolean;
  party_id?: string;
  opening: string;
  debits: string;
  credits: string;
}

function balanceRow(currency: string, opening: bigint, debits: bigint, credits: bigint): BalanceRow {
  return {
    opening: Money.fromMinorUnits(opening, currency),
    debits: Money.fromMinorUnits(debits, currency),
    credits: Money.fromMinorUnits(credits, currency),
    closing: Money.fromMinorUnits(opening + debits - credits, currency),
  };
}

function sumRows(currency: string, rows: BalanceRow[]): BalanceRow {
  const z = Money.zero(currency);
  return rows.reduce(
    (t, r) => ({ opening: t.opening.plus(r.opening), debits: t.debits.plus(r.debits), credits: t.credits.plus(r.credits), closing: t.closing.plus(r.closing) }),
    { opening: z, debits: z, credits: z, closing: z },
  );
}

const sameRow = (a: BalanceRow, b: BalanceRow) =>
  a.opening.equals(b.opening) && a.debits.equals(b.debits) && a.credits.equals(b.credits) && a.closing.equals(b.closing);

/** Read side of the ledger: accounts, entries, trial balance. Set-based SQL; never loads lines one by one. */
@Injectable()
export class LedgerReportsService {
  constructor(private readonly periods: LedgerPeriodsService) {}

  async accounts(em: EntityManager, organizationId: string, opts: { currency?: string; asOf?: DateString } = {}): Promise<AccountView[]> {
    const rows = await em.execute<(SumRow & { id: string; requires_party: boolean; balance: string })[]>(
      `select a.id, a.currency, a.code, a.name, a.type, a.normal_balance, a.requires_party, coalesce(b.balance, 0)::text as balance
         from ledger_accounts a
         left join (select l.account_id, sum(l.debit - l.credit) as balance
                      from journal_lines l join journal_entries e on e.id = l.entry_id
                     where l.organization_id = ? and (?::date is null or e.entry_date <= ?::date)
                     group by l.account_id) b on b.account_id = a.id
        where a.organization_id = ? and (?::text is null or a.currency = ?)
        order by a.currency, a.code`,
      [organizationId, opts.asOf ?? null, opts.asOf ?? null, organizationId, opts.currency ?? null, opts.currency ?? null],
    );
    return rows.map((r) => ({
      id: r.id,
      currency: r.currency,
      code: r.code,
      name: r.name,
      type: r.type,
      normalBalance: r.normal_balance,
      requiresParty: r.requires_party,
      balance: Money.fromMinorUnits(BigInt(r.balance), r.currency),
    }));
  }

  /** Net debit balance of one account (optionally one party) over entries dated on or before `asOf`. */
  async accountBalance(
    em: EntityManager,
    organizationId: string,
    currency: string,
    accountCode: string,
    opts: { asOf?: DateString; partyId?: string } = {},
  ): Promise<Money> {
    const [row] = await em.execute<{ balance: string }[]>(
      `select coalesce(sum(l.debit - l.credit), 0)::text as balance
         from journal_lines l
         join journal_entries e on e.id = l.entry_id
         join ledger_accounts a on a.id = l.account_id
        where l.organization_id = ? and a.currency = ? and a.code = ?
          and (?::date is null or e.entry_date <= ?::date) and (?::uuid is null or l.party_id = ?::uuid)`,
      [organizationId, currency, accountCode, opts.asOf ?? null, opts.asOf ?? null, opts.partyId ?? null, opts.partyId ?? null],
    );
    return Money.fromMinorUnits(BigInt(row.balance), currency);
  }

  /** Entries with their lines, newest posting first, cursor-paginated over (created_at, id). */
  async entries(em: EntityManager, organizationId: string, f: EntryFilter): Promise<{ data: PostedEntry[]; nextCursor: string | null }> {
    const period = f.period === undefined ? undefined : assertPeriod(f.period);
    const cursor: Cursor | undefined = decodeCursor(f.cursor);
    const where: string[] = ['e.organization_id = ?'];
    const params: unknown[] = [organizationId];
    if (period) {
      where.push('e.entry_date >= ?::date and e.entry_date <= ?::date');
      params.push(firstDay(period), lastDay(period));
    }
    if (f.sourceType) {
      where.push('e.source_type = ?');
      params.push(f.sourceType);
    }
    if (f.sourceId) {
      where.push('e.source_id = ?');
      params.push(f.sourceId);
    }
    if (f.accountCode || f.partyId) {
      where.push(
        `exists (select 1 from journal_lines fl join ledger_accounts fa on fa.id = fl.account_id
                  where fl.entry_id = e.id and (?::text is null or fa.code = ?) and (?::uuid is null or fl.party_id = ?::uuid))`,
      );
      params.push(f.accountCode ?? null, f.accountCode ?? null, f.partyId ?? null, f.partyId ?? null);
    }
    if (cursor) {
      where.push('(e.created_at < ?::timestamptz or (e.created_at = ?::timestamptz and e.id < ?::uuid))');
      params.push(cursor.t, cursor.t, cursor.id);
    }
    const page = await em.execute<{ id: string; created_at: string }[]>(
      `select e.id, to_json(e.created_at)#>>'{}' as created_at from journal_entries e
        where ${where.join(' and ')} order by e.created_at desc, e.id desc limit ?`,
      [...params, f.limit + 1],
    );
    const more = page.length > f.limit;
    const ids = page.slice(0, f.limit);
    if (!ids.length) return { data: [], nextCursor: null };
    const rows = await em.execute(`${ENTRY_SELECT} where e.organization_id = ? and e.id in (select jsonb_array_elements_text(?::jsonb)::uuid)`, [
      organizationId,
      JSON.stringify(ids.map((r) => r.id)),
    ]);
    const byId = new Map(entriesFromRows(rows as never).map((e) => [e.id, e]));
    const data = ids.map((r) => byId.get(r.id)!).filter(Boolean);
    const last = ids[ids.length - 1];
    // The cursor keeps the database's microseconds, which a JS Date would drop.
    return { data, nextCursor: more ? rawCursor(last.created_at, last.id) : null };
  }

  /**
   * Trial balance of a month, per currency: each account's opening balance (entries dated before
   * the month), the month's debits and credits, and its closing balance; the per-customer
   * sub-ledger of Accounts receivable; totals. Balances are net debit balances (debit − credit).
   */
  async trialBalance(em: EntityManager, organizationId: string, period: string, opts: { currency?: string } = {}): Promise<TrialBalance> {
    const p = assertPeriod(period);
    const from = firstDay(p);
    const end = firstDay(addPeriods(p, 1));
    const movement = `select l.account_id, l.party_id,
                             sum(l.debit - l.credit) filter (where e.entry_date < ?::date) as opening,
                             sum(l.debit) filter (where e.entry_date >= ?::date) as debits,
                             sum(l.credit) filter (where e.entry_date >= ?::date) as credits
                        from journal_lines l join journal_entries e on e.id = l.entry_id
                       where e.organization_id = ? and e.entry_date < ?::date`;
    const movementParams = [from, from, from, organizationId, end];
    const accounts = await em.execute<SumRow[]>(
      `with m as (${movement} group by l.account_id, l.party_id)
       select a.currency, a.code, a.name, a.type, a.normal_balance, a.requires_party,
              coalesce(sum(m.opening), 0)::text as opening, coalesce(sum(m.debits), 0)::text as debits, coalesce(sum(m.credits), 0)::text as credits
         from ledger_accounts a left join m on m.account_id = a.id
        where a.organization_id = ? and (?::text is null or a.currency = ?)
        group by a.id, a.currency, a.code, a.name, a.type, a.normal_balance, a.requires_party
        order by a.currency, a.code`,
      [...movementParams, organizationId, opts.currency ?? null, opts.currency ?? null],
    );
    const parties = await em.execute<SumRow[]>(
      `with m as (${movement} group by l.account_id, l.party_id)
       select a.currency, a.code, a.name, a.type, a.normal_balance, m.party_id,
              coalesce(m.opening, 0)::text as opening, coalesce(m.debits, 0)::text as debits, coalesce(m.credits, 0)::text as credits
         from m join ledger_accounts a on a.id = m.account_id
        where a.requires_party and (?::text is null or a.currency = ?)
        order by a.currency, a.code, m.party_id`,
      [...movementParams, opts.currency ?? null, opts.currency ?? null],
    );
    const status = (await this.periods.status(em, organizationId, p)).status;
    const currencies = [...new Set(accounts.map((a) => a.currency))];
    return {
      period: p,
      from,
      to: lastDay(p),
      status,
      currencies: currencies.map((c) => {
        const accs: TrialBalanceAccount[] = accounts
          .filter((a) => a.currency === c)
          .map((a) => ({
            code: a.code,
            name: a.name,
            type: a.type,
            normalBalance: a.normal_balance,
            ...balanceRow(c, BigInt(a.opening), BigInt(a.debits), BigInt(a.credits)),
          }));
        const totals = sumRows(c, accs);
        const controls = accounts.filter((a) => a.currency === c && a.requires_party);
        const subLedgers = controls.map((ctl) => {
          const ps: SubLedgerParty[] = parties
            .filter((x) => x.currency === c && x.code === ctl.code)
            .map((x) => ({ partyId: x.party_id!, ...balanceRow(c, BigInt(x.opening), BigInt(x.debits), BigInt(x.credits)) }));
          const total = sumRows(c, ps);
          const control = accs.find((a) => a.code === ctl.code)!;
          return { accountCode: ctl.code, accountName: ctl.name, parties: ps, total, tiesToControl: sameRow(total, control) };
        });
        return {
          currency: c,
          accounts: accs,
          subLedgers,
          totals,
          balanced: totals.opening.isZero() && totals.closing.isZero() && totals.debits.equals(totals.credits),
        };
      }),
    };
  }
}
