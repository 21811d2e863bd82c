import type { EntityManager } from '@mikro-orm/postgresql';
import { dec, type Decimal } from '@closebook/money';
import { ACCOUNTS, type TrialBalance } from '@closebook/ledger';
import { decimalCell, minorUnits } from './cells';
import type { SheetRefs } from './formula-refs';
import { arRollForward, deferredRollForward, unbilledRollForward } from './ledger-sheets';
import { INVOICES_IN_SCOPE, POSTED_STATUSES } from './scope-sql';
import type { WorkbookScope, WorkbookSummaryLine, WorkbookSummaryValue } from './sheet-registry';

export const PASS = 'PASS';
export const FAIL = 'FAIL';
export const INFO = 'INFO';

const status = (ok: boolean) => (ok ? PASS : FAIL);

/** A decimal with the currency's digits: a number cell when a double holds it exactly, else its text (never rounded silently). */
const money = (v: Decimal | string, currency: string) => decimalCell(dec(v).toFixed(minorUnits(currency)));

/** Integer minor units → major units. */
const fromMinor = (minor: string | bigint | undefined, currency: string) => dec(String(minor ?? '0')).div(dec(10).pow(minorUnits(currency)));

const INVOICES = 'Invoices';
const LINES = 'Invoice lines';
const LEDGER = 'Ledger entries';
const TB = 'Trial balance';
const AR_RF = 'AR roll-forward';
const DEFERRED_RF = 'Deferred revenue roll-fwd';
const UNBILLED_RF = 'Unbilled roll-forward';
const NOTES = 'Credit notes';
const NOTE_LINES = 'Credit note lines';
const PAYMENTS = 'Payments';

/** Journal lines dated in the month, by currency, account and source type (minor units). */
interface LedgerSums {
  debit(currency: string, filter?: { code?: string; source?: string }): Decimal;
  credit(currency: string, filter?: { code?: string; source?: string }): Decimal;
  currencies: string[];
}

async function ledgerSums(em: EntityManager, s: WorkbookScope): Promise<LedgerSums> {
  const rows = await em.execute<{ currency: string; code: string; source_type: string; debit: string; credit: string }[]>(
    `select je.currency, a.code, je.source_type, sum(jl.debit)::text as debit, sum(jl.credit)::text as credit
     from journal_entries je join journal_lines jl on jl.entry_id = je.id join ledger_accounts a on a.id = jl.account_id
     where je.organization_id = ? and je.entry_date >= ?::date and je.entry_date < ?::date
     group by je.currency, a.code, je.source_type`,
    [s.organizationId, s.from.toISOString(), s.to.toISOString()],
  );
  const sum = (side: 'debit' | 'credit') => (currency: string, f: { code?: string; source?: string } = {}) =>
    rows
      .filter((r) => r.currency === currency && (f.code === undefined || r.code === f.code) && (f.source === undefined || r.source_type === f.source))
      .reduce((t, r) => t.plus(fromMinor(r[side], currency)), dec(0));
  return { debit: sum('debit'), credit: sum('credit'), currencies: [...new Set(rows.map((r) => r.currency))].sort() };
}

/** `a − b` of two formula fragments, either of which may be absent. */
const minus = (a: string | null, b: string | null) => (a && b ? `${a}-(${b})` : null);
const plus = (...terms: (string | null)[]) => (terms.every((t) => t) ? terms.join('+') : null);

/**
 * A tie-out of two live formulas (either side may be a typed value): the cached results are what
 * Closebook computed in the snapshot; the status is PASS when they agree (the writer makes it a
 * formula comparing the two cells, so the spreadsheet re-judges it when it recalculates).
 */
function formulaLine(
  label: string,
  currency: string,
  expected: { formula: string | null; value: Decimal | number },
  actual: { formula: string | null; value: Decimal | number },
  detail: string,
  format: 'money' | 'count' = 'money',
): WorkbookSummaryLine | null {
  if (expected.formula === null && actual.formula === null) return null;
  const cell = (side: { formula: string | null; value: Decimal | number }): WorkbookSummaryValue => {
    const v = format === 'money' ? money(dec(side.value as Decimal), currency) : Number(side.value);
    return side.formula === null ? v : { formula: side.formula, result: v };
  };
  const ok = dec(expected.value as Decimal).eq(dec(actual.value as Decimal));
  return { section: 'Tie-out', label: `${label} (${currency})`, expected: cell(expected), actual: cell(actual), status: status(ok), detail, format, currency };
}

/**
 * The Summary's tie-outs (docs/exports.md "Summary tie-outs"). Those that compare sheets are live
 * formulas over them (SUMIFS by currency, account, source, status…), each side cached with the value
 * Closebook computed with SQL in the same snapshot; the rest (a recount of events, rollups as billed
 * against now, invoices whose own arithmetic is off) are computed figures.
 */
export async function computeTieOuts(em: EntityManager, s: WorkbookScope, refs: SheetRefs, tb: TrialBalance): Promise<WorkbookSummaryLine[]> {
  const scope = [s.organizationId, s.from.toISOString(), s.to.toISOString()];
  const lines: WorkbookSummaryLine[] = [];
  const push = (l: WorkbookSummaryLine | null) => {
    if (l) lines.push(l);
  };

  // 1. Invoices of the month: totals = lines + tax; each invoice's own arithmetic.
  const invoices = await em.execute<{ currency: string; n: string; total: string; tax: string; lines: string; posted: string; mismatched: string }[]>(
    `select i.currency, count(*) as n, sum(i.total)::text as total, sum(i.tax_amount)::text as tax,
            coalesce(sum(l.amount), 0)::text as lines,
            coalesce(sum(i.total) filter (where i.status in ${POSTED_STATUSES}), 0)::text as posted,
            count(*) filter (where i.subtotal <> coalesce(l.amount, 0) or i.subtotal + i.tax_amount <> i.total) as mismatched
     from invoices i
     left join lateral (select sum(x.amount) as amount from invoice_lines x where x.invoice_id = i.id) l on true
     where i.id in (${INVOICES_IN_SCOPE})
     group by i.currency order by i.currency`,
    scope,
  );
  if (!invoices.length) lines.push({ label: 'Invoices dated in the month', expected: null, actual: 0, status: INFO, detail: 'no invoice is dated (issue_date) in the month', format: 'count' });
  const ledger = await ledgerSums(em, s);
  for (const r of invoices) {
    const c = r.currency;
    push(
      formulaLine(
        'Σ invoice totals = Σ line amounts + Σ tax',
        c,
        { formula: plus(refs.sumifs(LINES, 'amount', { currency: c }), refs.sumifs(INVOICES, 'tax', { currency: c })), value: dec(r.lines).plus(dec(r.tax)) },
        { formula: refs.sumifs(INVOICES, 'total', { currency: c }), value: dec(r.total) },
        `${r.n} invoice(s) dated in the month; Invoices!total against Invoice lines!amount + Invoices!tax`,
      ),
    );
    lines.push({
      label: `Invoices whose subtotal ≠ their lines or total ≠ subtotal + tax (${c})`,
      expected: 0,
      actual: Number(r.mismatched),
      status: status(Number(r.mismatched) === 0),
      format: 'count',
    });
    const arFromInvoices = ledger.debit(c, { code: ACCOUNTS.ACCOUNTS_RECEIVABLE, source: 'invoice' }).minus(ledger.credit(c, { code: ACCOUNTS.ACCOUNTS_RECEIVABLE, source: 'invoice' }));
    push(
      formulaLine(
        `Σ posted invoice totals = Accounts receivable (${ACCOUNTS.ACCOUNTS_RECEIVABLE}) of invoice entries in the ledger`,
        c,
        { formula: plus(refs.sumifs(INVOICES, 'total', { currency: c, status: 'finalized' }), refs.sumifs(INVOICES, 'total', { currency: c, status: 'paid' })), value: dec(r.posted) },
        {
          formula: minus(
            refs.sumifs(LEDGER, 'debit', { currency: c, account_code: ACCOUNTS.ACCOUNTS_RECEIVABLE, source_type: 'invoice' }),
            refs.sumifs(LEDGER, 'credit', { currency: c, account_code: ACCOUNTS.ACCOUNTS_RECEIVABLE, source_type: 'invoice' }),
          ),
          value: arFromInvoices,
        },
        'finalized and paid invoices dated in the month against the net AR of the invoice entries dated in it (each invoice posts on its issue date)',
      ),
    );
  }

  // 2. The ledger month against the trial balance, per currency.
  for (const cur of tb.currencies) {
    const c = cur.currency;
    push(
      formulaLine(
        'Ledger entries balance: Σ debits = Σ credits',
        c,
        { formula: refs.sumifs(LEDGER, 'debit', { currency: c }), value: ledger.debit(c) },
        { formula: refs.sumifs(LEDGER, 'credit', { currency: c }), value: ledger.credit(c) },
        'every journal line dated in the month',
      ),
    );
    const tbDebits = cur.accounts.reduce((t, a) => t.plus(dec(a.debits.toJSON().amount)), dec(0));
    const tbCredits = cur.accounts.reduce((t, a) => t.plus(dec(a.credits.toJSON().amount)), dec(0));
    push(
      formulaLine(
        'Trial balance debits = Ledger entries debits',
        c,
        { formula: refs.sumifs(TB, 'debits', { currency: c, kind: 'account' }), value: tbDebits },
        { formula: refs.sumifs(LEDGER, 'debit', { currency: c }), value: ledger.debit(c) },
        'all accounts',
      ),
    );
    push(
      formulaLine(
        'Trial balance credits = Ledger entries credits',
        c,
        { formula: refs.sumifs(TB, 'credits', { currency: c, kind: 'account' }), value: tbCredits },
        { formula: refs.sumifs(LEDGER, 'credit', { currency: c }), value: ledger.credit(c) },
        'all accounts',
      ),
    );
    for (const a of cur.accounts) {
      if (a.debits.isZero() && a.credits.isZero()) continue;
      push(
        formulaLine(
          `Trial balance movement of ${a.code} ${a.name} = Ledger entries`,
          c,
          {
            formula: minus(refs.sumifs(TB, 'debits', { currency: c, kind: 'account', code: a.code }), refs.sumifs(TB, 'credits', { currency: c, kind: 'account', code: a.code })),
            value: dec(a.debits.toJSON().amount).minus(dec(a.credits.toJSON().amount)),
          },
          {
            formula: minus(refs.sumifs(LEDGER, 'debit', { currency: c, account_code: a.code }), refs.sumifs(LEDGER, 'credit', { currency: c, account_code: a.code })),
            value: ledger.debit(c, { code: a.code }).minus(ledger.credit(c, { code: a.code })),
          },
          'debits − credits of the month',
        ),
      );
    }
    push(
      formulaLine(
        'Trial balance closes to zero: Σ closing balances',
        c,
        { formula: null, value: dec(0) },
        { formula: refs.sumifs(TB, 'closing', { currency: c, kind: 'account' }), value: dec(cur.totals.closing.toJSON().amount) },
        'net debit balances of every account',
      ),
    );
    for (const sub of cur.subLedgers) {
      const control = cur.accounts.find((a) => a.code === sub.accountCode);
      push(
        formulaLine(
          `${sub.accountCode} ${sub.accountName}: Σ customer balances = control account`,
          c,
          { formula: refs.sumifs(TB, 'closing', { currency: c, kind: 'account', code: sub.accountCode }), value: dec(control?.closing.toJSON().amount ?? '0') },
          { formula: refs.sumifs(TB, 'closing', { currency: c, kind: 'sub-ledger', code: sub.accountCode }), value: dec(sub.total.closing.toJSON().amount) },
          `${sub.parties.length} customer(s) in the sub-ledger`,
        ),
      );
    }
  }

  // 3. Roll-forwards: each closing ties to the trial balance, each movement to the ledger.
  const tbClosing = (c: string, code: string) => dec(tb.currencies.find((x) => x.currency === c)?.accounts.find((a) => a.code === code)?.closing.toJSON().amount ?? '0');
  const tbOpening = (c: string, code: string) => dec(tb.currencies.find((x) => x.currency === c)?.accounts.find((a) => a.code === code)?.opening.toJSON().amount ?? '0');
  const closingOf = (r: Record<string, unknown>) => String((r.closing as { result: string }).result);
  const tbClosingRef = (c: string, code: string) => refs.sumifs(TB, 'closing', { currency: c, kind: 'account', code });
  const AR = ACCOUNTS.ACCOUNTS_RECEIVABLE;
  for (const r of await arRollForward(em, s.organizationId, s.period)) {
    const c = String(r.currency);
    push(
      formulaLine(
        'AR roll-forward closing = trial balance Accounts receivable',
        c,
        { formula: tbClosingRef(c, AR), value: tbClosing(c, AR) },
        { formula: refs.sumifs(AR_RF, 'closing', { currency: c }), value: dec(closingOf(r)) },
        'opening + invoiced − credited − paid + other',
      ),
    );
    push(
      formulaLine(
        'AR roll-forward credited = AR credits of credit-note entries',
        c,
        { formula: refs.sumifs(AR_RF, 'credited', { currency: c }), value: dec(String(r.credited)) },
        {
          formula: minus(refs.sumifs(LEDGER, 'credit', { currency: c, account_code: AR, source_type: 'credit_note' }), refs.sumifs(LEDGER, 'debit', { currency: c, account_code: AR, source_type: 'credit_note' })),
          value: ledger.credit(c, { code: AR, source: 'credit_note' }).minus(ledger.debit(c, { code: AR, source: 'credit_note' })),
        },
        'Ledger entries with source_type credit_note',
      ),
    );
    push(
      formulaLine(
        'AR roll-forward paid = AR credits of payment entries',
        c,
        { formula: refs.sumifs(AR_RF, 'paid', { currency: c }), value: dec(String(r.paid)) },
        {
          formula: minus(refs.sumifs(LEDGER, 'credit', { currency: c, account_code: AR, source_type: 'payment' }), refs.sumifs(LEDGER, 'debit', { currency: c, account_code: AR, source_type: 'payment' })),
          value: ledger.credit(c, { code: AR, source: 'payment' }).minus(ledger.debit(c, { code: AR, source: 'payment' })),
        },
        'Ledger entries with source_type payment',
      ),
    );
  }
  const DEFERRED = ACCOUNTS.DEFERRED_REVENUE;
  const deferred = await deferredRollForward(em, s.organizationId, s.period);
  for (const c of [...new Set([...deferred.map((r) => String(r.currency)), ...tb.currencies.filter((x) => !tbClosing(x.currency, DEFERRED).isZero()).map((x) => x.currency)])].sort()) {
    const rows = deferred.filter((r) => r.currency === c);
    const total = (k: string) => rows.reduce((t, r) => t.plus(dec(k === 'closing' ? closingOf(r) : String(r[k]))), dec(0));
    push(
      formulaLine(
        'Deferred revenue roll-forward opening = trial balance Deferred revenue (credit balance)',
        c,
        { formula: minus('0', refs.sumifs(TB, 'opening', { currency: c, kind: 'account', code: DEFERRED })), value: tbOpening(c, DEFERRED).negated() },
        { formula: refs.sumifs(DEFERRED_RF, 'opening', { currency: c }), value: total('opening') },
        `Σ over ${rows.length} product(s), from the deferral schedules`,
      ),
    );
    push(
      formulaLine(
        'Deferred revenue billed in advance = Deferred revenue credits in the ledger',
        c,
        { formula: refs.sumifs(DEFERRED_RF, 'billed', { currency: c }), value: total('billed') },
        { formula: refs.sumifs(LEDGER, 'credit', { currency: c, account_code: DEFERRED }), value: ledger.credit(c, { code: DEFERRED }) },
        'schedules billed in the month against the 2200 credits dated in it',
      ),
    );
    push(
      formulaLine(
        'Deferred revenue recognized = Deferred revenue debits in the ledger',
        c,
        { formula: refs.sumifs(DEFERRED_RF, 'recognized', { currency: c }), value: total('recognized') },
        { formula: refs.sumifs(LEDGER, 'debit', { currency: c, account_code: DEFERRED }), value: ledger.debit(c, { code: DEFERRED }) },
        'recognition entries dated in the month',
      ),
    );
    push(
      formulaLine(
        'Deferred revenue roll-forward closing = trial balance Deferred revenue (credit balance)',
        c,
        { formula: minus('0', tbClosingRef(c, DEFERRED)), value: tbClosing(c, DEFERRED).negated() },
        { formula: refs.sumifs(DEFERRED_RF, 'closing', { currency: c }), value: total('closing') },
        'opening + billed in advance − recognized, per product',
      ),
    );
  }
  const UNBILLED = ACCOUNTS.UNBILLED_RECEIVABLES;
  for (const r of await unbilledRollForward(em, s.organizationId, s.period)) {
    const c = String(r.currency);
    push(
      formulaLine(
        'Unbilled receivables roll-forward closing = trial balance Unbilled receivables',
        c,
        { formula: tbClosingRef(c, UNBILLED), value: tbClosing(c, UNBILLED) },
        { formula: refs.sumifs(UNBILLED_RF, 'closing', { currency: c }), value: dec(closingOf(r)) },
        'opening + accrued − reversed',
      ),
    );
  }

  // 4. Credit notes and payments of the month against their entries.
  const notes = await em.execute<{ currency: string; n: string; total: string; subtotal: string; lines: string }[]>(
    `select cn.currency, count(*) as n, sum(cn.total)::text as total, sum(cn.subtotal)::text as subtotal,
            coalesce(sum((select sum(x.amount) from credit_note_lines x where x.credit_note_id = cn.id)), 0)::text as lines
     from credit_notes cn where cn.organization_id = ? and cn.created_at >= ? and cn.created_at < ?
     group by cn.currency order by cn.currency`,
    scope,
  );
  for (const r of notes) {
    const c = r.currency;
    push(
      formulaLine(
        'Σ credit note lines = Σ credit note subtotals',
        c,
        { formula: refs.sumifs(NOTES, 'subtotal', { currency: c }), value: dec(r.subtotal) },
        { formula: refs.sumifs(NOTE_LINES, 'amount', { currency: c }), value: dec(r.lines) },
        `${r.n} credit note(s) issued in the month`,
      ),
    );
    push(
      formulaLine(
        'Σ credit note totals = receivables and customer credits credited by their entries',
        c,
        { formula: refs.sumifs(NOTES, 'total', { currency: c }), value: dec(r.total) },
        {
          formula: plus(
            refs.sumifs(LEDGER, 'credit', { currency: c, account_code: AR, source_type: 'credit_note' }),
            refs.sumifs(LEDGER, 'credit', { currency: c, account_code: ACCOUNTS.CUSTOMER_CREDITS, source_type: 'credit_note' }),
          ),
          value: ledger.credit(c, { code: AR, source: 'credit_note' }).plus(ledger.credit(c, { code: ACCOUNTS.CUSTOMER_CREDITS, source: 'credit_note' })),
        },
        `credits to ${AR} and ${ACCOUNTS.CUSTOMER_CREDITS} of entries with source_type credit_note`,
      ),
    );
  }
  const payments = await em.execute<{ currency: string; n: string; amount: string }[]>(
    `select p.currency, count(*) as n, sum(p.amount)::text as amount from payments p
     where p.organization_id = ? and p.received_at >= ? and p.received_at < ? group by p.currency order by p.currency`,
    scope,
  );
  for (const r of payments) {
    const c = r.currency;
    push(
      formulaLine(
        'Σ payments received = receivables credited by their entries',
        c,
        { formula: refs.sumifs(PAYMENTS, 'amount', { currency: c }), value: dec(r.amount) },
        { formula: refs.sumifs(LEDGER, 'credit', { currency: c, account_code: AR, source_type: 'payment' }), value: ledger.credit(c, { code: AR, source: 'payment' }) },
        `${r.n} payment(s) received in the month`,
      ),
    );
  }

  // 5. Usage: rollups against a recount of their events, and as billed against now (computed figures).
  const [usage] = await em.execute<{ rollups: string; rollup_events: string; covered_events: string; events: string; attributed: string }[]>(
    `with r as (
       select ur.subscription_id, ur.period_start, ur.period_end, ur.product_id, sum(ur.event_count) as n, count(*) as rows
       from usage_rollups ur where ur.organization_id = ? and ur.period_end > ? and ur.period_end <= ?
       group by ur.subscription_id, ur.period_start, ur.period_end, ur.product_id
     )
     select (select coalesce(sum(rows), 0) from r)::text as rollups,
            (select coalesce(sum(n), 0) from r)::text as rollup_events,
            (select count(*) from r
               join subscriptions s on s.id = r.subscription_id
               join products p on p.id = r.product_id
               join usage_events e on e.organization_id = s.organization_id and e.customer_id = s.customer_id
                    and e.ts >= greatest(r.period_start, s.started_at) and e.ts < least(r.period_end, coalesce(s.ends_at, 'infinity'::timestamptz))
                    and e.event_name = p.meter_event_name and e.properties @> coalesce(p.meter_filter, '{}'::jsonb)
               where case
                 when p.meter_aggregation = 'count' then true
                 when p.meter_aggregation = 'unique_count' then e.properties->>p.meter_property is not null
                 when jsonb_typeof(e.properties->p.meter_property) = 'number' then (e.properties->>p.meter_property)::numeric >= 0
                 when jsonb_typeof(e.properties->p.meter_property) = 'string' then e.properties->>p.meter_property ~ '^[0-9]+([.][0-9]+){0,1}$'
                 else false end
            )::text as covered_events,
            (select count(*) from usage_events e where e.organization_id = ? and e.ts >= ? and e.ts < ?)::text as events,
            (select count(*) from usage_events e where e.organization_id = ? and e.ts >= ? and e.ts < ?
               and exists (select 1 from subscriptions s where s.customer_id = e.customer_id and s.started_at <= e.ts and (s.ends_at is null or e.ts < s.ends_at)))::text as attributed`,
    [...scope, ...scope, ...scope],
  );
  lines.push({
    label: 'Σ rollup event counts = usage events the rollups cover (recounted)',
    expected: Number(usage.covered_events),
    actual: Number(usage.rollup_events),
    status: status(usage.covered_events === usage.rollup_events),
    detail: `${usage.rollups} rollup(s) of billing periods ending in the month; events recounted by each rollup's meter (name, filter, quantity) and window`,
    format: 'count',
  });
  lines.push({
    label: 'Usage events timestamped in the month',
    expected: null,
    actual: Number(usage.events),
    status: INFO,
    detail: `${usage.attributed} attributable to a subscription in force at their timestamp`,
    format: 'count',
  });

  const [billed] = await em.execute<{ n: string; billed: string; now: string; changed: string }[]>(
    `select count(*) as n, coalesce(sum(ir.event_count), 0)::text as billed, coalesce(sum(ur.event_count), 0)::text as now,
            count(*) filter (where ir.event_count <> ur.event_count or ir.digest <> ur.digest or ir.aggregate <> ur.aggregate) as changed
     from invoice_rollups ir
     join usage_rollups ur on ur.id = ir.rollup_id
     where ir.invoice_id in (${INVOICES_IN_SCOPE})`,
    scope,
  );
  lines.push({
    label: 'Rollups as billed (invoice snapshots) = rollups now',
    expected: Number(billed.now),
    actual: Number(billed.billed),
    status: status(Number(billed.changed) === 0),
    detail: `${billed.n} invoice–rollup link(s), ${billed.changed} changed since rating (late usage)`,
    format: 'count',
  });
  return lines;
}
