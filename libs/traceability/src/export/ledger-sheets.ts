import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ACCOUNTS, addPeriods, firstDay, LedgerReportsService, type TrialBalance } from '@closebook/ledger';
import { minorToMajor } from './cells';
import { id, money, text } from './columns';
import { cursorRows } from './sql';
import { WorkbookSheetRegistry, type WorkbookColumn, type WorkbookRow, type WorkbookSheetProvider } from './sheet-registry';

/**
 * The ledger month of the auditor workbook beside the journal (docs/exports.md): the trial
 * balance as `GET /v1/ledger/trial-balance` gives it, and the roll-forwards of Accounts receivable,
 * Deferred revenue (per product) and Unbilled receivables, each row closing with a live formula.
 * Each is a few rows per currency (the trial balance: accounts plus one row per customer of the
 * receivables sub-ledger), read in the export's snapshot.
 */


/** A row's own formula: `{key}` stands for that column's cell in the same row (workbook-writer). */
const rowFormula = (formula: string, result: string) => ({ formula, result });

/** The first day of a month and of the next (the ledger's own date rules). */
function days(period: string): { first: string; next: string } {
  return { first: firstDay(period), next: firstDay(addPeriods(period, 1)) };
}

/**
 * One account's balance movements per currency, in minor units: `opening` (entries dated before the
 * month), `closing` (through its end) and the month's movement split by `columns` — each the sum
 * of an expression over `l` (journal line) for the month's lines matching a condition on `e` (its entry).
 */
async function accountMovements(em: EntityManager, org: string, period: string, code: string, columns: Record<string, { sum: string; where?: string }>): Promise<MinorRow[]> {
  const d = days(period);
  const names = Object.keys(columns);
  return em.execute<MinorRow[]>(
    `select a.currency,
            coalesce(sum(l.debit - l.credit) filter (where e.entry_date < ?::date), 0)::text as opening,
            ${names.map((n) => `coalesce(sum(${columns[n].sum}) filter (where e.entry_date >= ?::date and (${columns[n].where ?? 'true'})), 0)::text as ${n}`).join(',\n            ')},
            coalesce(sum(l.debit - l.credit), 0)::text as closing
     from ledger_accounts a
     left join journal_lines l on l.account_id = a.id
     left join journal_entries e on e.id = l.entry_id and e.entry_date < ?::date
     where a.organization_id = ? and a.code = ? and (l.id is null or e.id is not null)
     group by a.currency order by a.currency`,
    [d.first, ...names.map(() => d.first), d.next, org, code],
  );
}

export const TRIAL_BALANCE_COLUMNS: WorkbookColumn[] = [
  text('currency', 'currency', 9),
  text('row', 'kind', 11),
  text('account_code', 'code', 13),
  text('account', 'account', 26),
  text('type', 'type', 10),
  text('normal_balance', 'normal_balance', 14),
  id('party_id', 'party_id'),
  text('customer', 'customer', 20),
  money('opening', 'opening'),
  money('debits', 'debits'),
  money('credits', 'credits'),
  money('closing', 'closing'),
];

/** Trial balance rows: per currency its accounts (`account`), then each sub-ledger's parties (`sub-ledger`). */
export function trialBalanceRows(tb: TrialBalance, customers: ReadonlyMap<string, string>): WorkbookRow[] {
  const rows: WorkbookRow[] = [];
  for (const c of tb.currencies) {
    for (const a of c.accounts) {
      rows.push({
        currency: c.currency,
        kind: 'account',
        code: a.code,
        account: a.name,
        type: a.type,
        normal_balance: a.normalBalance,
        opening: a.opening.toJSON().amount,
        debits: a.debits.toJSON().amount,
        credits: a.credits.toJSON().amount,
        closing: a.closing.toJSON().amount,
      });
    }
    for (const sub of c.subLedgers) {
      for (const p of sub.parties) {
        rows.push({
          currency: c.currency,
          kind: 'sub-ledger',
          code: sub.accountCode,
          account: sub.accountName,
          party_id: p.partyId,
          customer: customers.get(p.partyId) ?? null,
          opening: p.opening.toJSON().amount,
          debits: p.debits.toJSON().amount,
          credits: p.credits.toJSON().amount,
          closing: p.closing.toJSON().amount,
        });
      }
    }
  }
  return rows;
}

export const AR_ROLL_FORWARD_COLUMNS: WorkbookColumn[] = [
  text('currency', 'currency', 9),
  money('opening', 'opening'),
  money('invoiced', 'invoiced'),
  money('credited', 'credited'),
  money('paid', 'paid'),
  money('other', 'other'),
  money('closing', 'closing'),
  text('rule', 'rule', 70),
];

export const DEFERRED_ROLL_FORWARD_COLUMNS: WorkbookColumn[] = [
  text('currency', 'currency', 9),
  text('product', 'product', 20),
  money('opening', 'opening'),
  money('billed_in_advance', 'billed'),
  money('recognized', 'recognized'),
  money('closing', 'closing'),
  text('rule', 'rule', 70),
];

export const UNBILLED_ROLL_FORWARD_COLUMNS: WorkbookColumn[] = [
  text('currency', 'currency', 9),
  money('opening', 'opening'),
  money('accrued', 'accrued'),
  money('reversed', 'reversed'),
  money('closing', 'closing'),
  text('rule', 'rule', 70),
];

interface MinorRow {
  currency: string;
  [k: string]: string;
}

const major = (r: MinorRow, k: string) => minorToMajor(r[k] ?? '0', r.currency);

/**
 * Accounts receivable by what moved it: opening (entries dated before the month), invoiced (net
 * debit of invoice entries), credited (net credit of credit-note entries), paid (net credit of
 * payment entries), other (any other entry, net debit) — so opening + invoiced − credited − paid +
 * other is the closing balance by construction of the journal, and the Summary ties it to the trial balance.
 */
export async function arRollForward(em: EntityManager, org: string, period: string): Promise<WorkbookRow[]> {
  const rows = await accountMovements(em, org, period, ACCOUNTS.ACCOUNTS_RECEIVABLE, {
    invoiced: { sum: 'l.debit - l.credit', where: `e.source_type = 'invoice'` },
    credited: { sum: 'l.credit - l.debit', where: `e.source_type = 'credit_note'` },
    paid: { sum: 'l.credit - l.debit', where: `e.source_type = 'payment'` },
    other: { sum: 'l.debit - l.credit', where: `e.source_type not in ('invoice', 'credit_note', 'payment')` },
  });
  return rows.map((r) => ({
    currency: r.currency,
    opening: major(r, 'opening'),
    invoiced: major(r, 'invoiced'),
    credited: major(r, 'credited'),
    paid: major(r, 'paid'),
    other: major(r, 'other'),
    closing: rowFormula('{opening}+{invoiced}-{credited}-{paid}+{other}', major(r, 'closing')),
    rule: 'opening + invoiced − credited − paid + other = closing (debit balance of 1100)',
  }));
}

/**
 * Deferred revenue (credit balance of 2200) per product, from the deferral schedules it holds:
 * opening = schedules billed before the month (their posting date, `recognize_from`) less what
 * recognition entries dated before it took out; billed in advance = schedules billed in the month;
 * recognized = recognition entries dated in the month. Per product through the invoice line a
 * schedule defers (`source_type = 'invoice_line'`); a schedule of another source shows its source type.
 */
export async function deferredRollForward(em: EntityManager, org: string, period: string): Promise<WorkbookRow[]> {
  const d = days(period);
  const rows = await em.execute<{ currency: string; product: string; opening: string; billed: string; recognized: string }[]>(
    `with s as (
       select d.id, d.currency, d.total_minor, coalesce(d.recognize_from, (d.created_at at time zone 'UTC')::date) as billed_on,
              coalesce(il.product_key, d.source_type) as product
       from deferral_schedules d
       left join invoice_lines il on d.source_type = 'invoice_line' and il.id::text = d.source_id
       where d.organization_id = ? and d.from_account = ?
     ),
     recognized as (
       select e.source_id, sum(l.debit - l.credit) filter (where e.entry_date < ?::date) as before,
              sum(l.debit - l.credit) filter (where e.entry_date >= ?::date) as during
       from journal_entries e
       join journal_lines l on l.entry_id = e.id
       join ledger_accounts a on a.id = l.account_id and a.code = ?
       where e.organization_id = ? and e.source_type = 'deferral_schedule' and e.entry_date < ?::date
       group by e.source_id
     )
     select s.currency, s.product,
            (coalesce(sum(s.total_minor) filter (where s.billed_on < ?::date), 0) - coalesce(sum(r.before), 0))::text as opening,
            coalesce(sum(s.total_minor) filter (where s.billed_on >= ?::date and s.billed_on < ?::date), 0)::text as billed,
            coalesce(sum(r.during), 0)::text as recognized
     from s left join recognized r on r.source_id = s.id::text
     where s.billed_on < ?::date
     group by s.currency, s.product
     order by s.currency, s.product`,
    [org, ACCOUNTS.DEFERRED_REVENUE, d.first, d.first, ACCOUNTS.DEFERRED_REVENUE, org, d.next, d.first, d.first, d.next, d.next],
  );
  return rows
    .filter((r) => r.opening !== '0' || r.billed !== '0' || r.recognized !== '0')
    .map((r) => {
      const closing = (BigInt(r.opening) + BigInt(r.billed) - BigInt(r.recognized)).toString();
      return {
        currency: r.currency,
        product: r.product,
        opening: minorToMajor(r.opening, r.currency),
        billed: minorToMajor(r.billed, r.currency),
        recognized: minorToMajor(r.recognized, r.currency),
        closing: rowFormula('{opening}+{billed}-{recognized}', minorToMajor(closing, r.currency)),
        rule: 'opening + billed in advance − recognized = closing (credit balance of 2200, from its schedules)',
      };
    });
}

/** Unbilled receivables (debit balance of 1150): opening, accrued (its debits in the month), reversed (its credits). */
export async function unbilledRollForward(em: EntityManager, org: string, period: string): Promise<WorkbookRow[]> {
  const rows = await accountMovements(em, org, period, ACCOUNTS.UNBILLED_RECEIVABLES, {
    accrued: { sum: 'l.debit' },
    reversed: { sum: 'l.credit' },
  });
  return rows.map((r) => ({
    currency: r.currency,
    opening: major(r, 'opening'),
    accrued: major(r, 'accrued'),
    reversed: major(r, 'reversed'),
    closing: rowFormula('{opening}+{accrued}-{reversed}', major(r, 'closing')),
    rule: 'opening + accrued − reversed = closing (debit balance of 1150)',
  }));
}

/** A small sheet computed in one go: its rows and its exact count come from the same function. */
function computedSheet(name: string, order: number, columns: WorkbookColumn[], compute: (em: EntityManager, org: string, period: string) => Promise<WorkbookRow[]>, emptyNote: string): WorkbookSheetProvider {
  return {
    name,
    order,
    columns,
    rows: async function* (em, org, period) {
      yield await compute(em, org, period);
    },
    count: async (em, org, period) => (await compute(em, org, period)).length,
    emptyNote,
  };
}

export const AR_ROLL_FORWARD_SHEET = computedSheet('AR roll-forward', 54, AR_ROLL_FORWARD_COLUMNS, arRollForward, 'The organization has no Accounts receivable account yet.');
export const DEFERRED_ROLL_FORWARD_SHEET = computedSheet(
  'Deferred revenue roll-fwd',
  55,
  DEFERRED_ROLL_FORWARD_COLUMNS,
  deferredRollForward,
  'No fee billed in advance is deferred in or across the month.',
);
export const UNBILLED_ROLL_FORWARD_SHEET = computedSheet('Unbilled roll-forward', 56, UNBILLED_ROLL_FORWARD_COLUMNS, unbilledRollForward, 'The organization has no Unbilled receivables account yet.');

/** Registers the trial balance (it reads the ledger's own report) and the roll-forwards. */
@Injectable()
export class LedgerWorkbookSheets {
  constructor(registry: WorkbookSheetRegistry, reports: LedgerReportsService) {
    const trialBalance = async (em: EntityManager, org: string, period: string): Promise<WorkbookRow[]> => {
      const tb = await reports.trialBalance(em, org, period);
      const parties = tb.currencies.flatMap((c) => c.subLedgers.flatMap((s) => s.parties.map((p) => p.partyId)));
      const customers = new Map<string, string>();
      if (parties.length) {
        for await (const r of cursorRows<{ id: string; external_id: string }>(em, `select id, external_id from customers where organization_id = ? and id = any(?::uuid[])`, [
          org,
          `{${[...new Set(parties)].join(',')}}`,
        ])) {
          customers.set(r.id, r.external_id);
        }
      }
      return trialBalanceRows(tb, customers);
    };
    for (const sheet of [
      computedSheet('Trial balance', 52, TRIAL_BALANCE_COLUMNS, trialBalance, 'The organization has no ledger accounts yet.'),
      AR_ROLL_FORWARD_SHEET,
      DEFERRED_ROLL_FORWARD_SHEET,
      UNBILLED_ROLL_FORWARD_SHEET,
    ]) {
      registry.register(sheet);
    }
  }
}
