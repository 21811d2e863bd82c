import { Injectable } from '@nestjs/common';
import { countOf, cursorBatches, cursorRows } from './sql';
import { date, datetime, id, money, monthParams, num, text } from './columns';
import { INVOICES_IN_SCOPE } from './scope-sql';
import { minorToMajor } from './cells';
import { DOCUMENT_SHEETS } from './document-sheets';
import { WorkbookSheetRegistry, type WorkbookColumn, type WorkbookSheetProvider } from './sheet-registry';

const params = monthParams;

export const INVOICES_SHEET: WorkbookSheetProvider = {
  name: 'Invoices',
  order: 10,
  columns: [
    id('id', 'id'),
    text('number', 'number', 14),
    text('customer', 'customer', 20),
    id('customer_id', 'customer_id'),
    id('subscription_id', 'subscription_id'),
    text('kind', 'kind', 11),
    text('status', 'status', 10),
    date('issue_date', 'issue_date'),
    datetime('period_start', 'period_start'),
    datetime('period_end', 'period_end'),
    money('subtotal', 'subtotal'),
    money('tax', 'tax'),
    money('total', 'total'),
    text('currency', 'currency', 9),
    datetime('finalized_at', 'finalized_at'),
    datetime('due_at', 'due_at'),
    text('content_hash', 'content_hash', 20),
  ],
  rows: (em, org, period) =>
    cursorRows(
      em,
      `select i.id, i.number, c.external_id as customer, i.customer_id, i.subscription_id, i.kind, i.status,
              to_char(i.issue_date, 'YYYY-MM-DD') as issue_date, i.period_start, i.period_end, i.subtotal::text as subtotal, i.tax_amount::text as tax, i.total::text as total,
              i.currency, i.finalized_at, i.due_at, i.content_hash
       from invoices i join customers c on c.id = i.customer_id
       where i.id in (${INVOICES_IN_SCOPE})
       order by i.issue_date, i.period_start, i.id`,
      params(org, period),
    ),
  count: (em, org, period) => countOf(em, `select count(*) as n from (${INVOICES_IN_SCOPE}) x`, params(org, period)),
};

export const INVOICE_LINES_SHEET: WorkbookSheetProvider = {
  name: 'Invoice lines',
  order: 20,
  columns: [
    id('id', 'id'),
    id('invoice_id', 'invoice_id'),
    num('position', 'position', 9),
    text('type', 'type', 16),
    text('product', 'product_key', 18),
    text('price_key', 'price_key', 14),
    datetime('period_start', 'period_start'),
    datetime('period_end', 'period_end'),
    num('quantity', 'quantity'),
    { header: 'unit_amount', key: 'unit_amount', width: 14, kind: 'number', numFmt: '#,##0.00########' },
    money('amount', 'amount'),
    text('currency', 'currency', 9),
    text('description', 'description', 40),
    { header: 'rollup_ids', key: 'rollup_ids', width: 40, kind: 'text' },
    text('source_type', 'source_type', 14),
    id('source_id', 'source_id'),
  ],
  rows: (em, org, period) =>
    cursorRows(
      em,
      `select l.id, l.invoice_id, l.position, l.type, l.product_key, l.price_key, l.period_start, l.period_end,
              l.quantity::text as quantity, l.unit_amount::text as unit_amount, l.amount::text as amount, l.currency, l.description,
              (select string_agg(ir.rollup_id::text, ' ' order by ir.rollup_id) from invoice_rollups ir where ir.invoice_line_id = l.id) as rollup_ids,
              l.source_type, l.source_id
       from invoices i join invoice_lines l on l.invoice_id = i.id
       where i.id in (${INVOICES_IN_SCOPE})
       order by i.issue_date, i.period_start, i.id, l.position`,
      params(org, period),
    ),
  count: (em, org, period) => countOf(em, `select count(*) as n from invoice_lines l where l.invoice_id in (${INVOICES_IN_SCOPE})`, params(org, period)),
};

/**
 * The rollups of billing periods ending in the month (those the month's period invoices bill),
 * plus any rollup an invoice of the month priced.
 */
const ROLLUPS_WHERE = `r.organization_id = ? and ((r.period_end > ? and r.period_end <= ?)
  or r.id in (select ir.rollup_id from invoice_rollups ir where ir.invoice_id in (${INVOICES_IN_SCOPE})))`;

export const ROLLUPS_SHEET: WorkbookSheetProvider = {
  name: 'Rollups',
  order: 30,
  columns: [
    id('id', 'id'),
    id('subscription_id', 'subscription_id'),
    text('product', 'product_key', 18),
    text('price_key', 'price_key', 14),
    text('aggregation', 'aggregation', 12),
    datetime('period_start', 'period_start'),
    datetime('period_end', 'period_end'),
    num('event_count', 'event_count'),
    num('aggregate', 'aggregate', 14),
    text('digest', 'digest', 22),
    datetime('computed_at', 'computed_at'),
  ],
  rows: (em, org, period) =>
    cursorRows(
      em,
      `select r.id, r.subscription_id, r.product_key, r.price_key, r.aggregation, r.period_start, r.period_end,
              r.event_count::text as event_count, r.aggregate::text as aggregate, r.digest::text as digest, r.computed_at
       from usage_rollups r where ${ROLLUPS_WHERE}
       order by r.period_end, r.subscription_id, r.product_key, r.price_key, r.id`,
      [...params(org, period), ...params(org, period)],
    ),
  count: (em, org, period) => countOf(em, `select count(*) as n from usage_rollups r where ${ROLLUPS_WHERE}`, [...params(org, period), ...params(org, period)]),
};

export const USAGE_EVENTS_SHEET: WorkbookSheetProvider = {
  name: 'Usage events',
  order: 40,
  columns: [
    text('event_id', 'event_id', 38),
    text('customer', 'customer', 20),
    id('customer_id', 'customer_id'),
    text('event_name', 'event_name', 16),
    datetime('timestamp', 'ts'),
    { header: 'properties', key: 'properties', width: 50, kind: 'json' },
    id('subscription_id', 'subscription_id'),
    datetime('received_at', 'received_at'),
  ],
  // At most one subscription of a customer is in force at an instant (exclusion constraint), so the
  // attribution join never repeats an event.
  rows: (em, org, period) =>
    cursorBatches<Record<string, unknown>>(
      em,
      `select e.event_id, c.external_id as customer, e.customer_id, e.event_name, e.ts, e.properties::text as properties,
              s.id as subscription_id, e.received_at
       from usage_events e
       join customers c on c.id = e.customer_id
       left join subscriptions s on s.customer_id = e.customer_id and s.started_at <= e.ts and (s.ends_at is null or e.ts < s.ends_at)
       where e.organization_id = ? and e.ts >= ? and e.ts < ?
       order by e.ts, e.event_id`,
      params(org, period),
      10_000,
    ),
  count: (em, org, period) => countOf(em, `select count(*) as n from usage_events e where e.organization_id = ? and e.ts >= ? and e.ts < ?`, params(org, period)),
};

/** Exactly the journal lines dated in the month (reversals included): the month's ledger, as the trial balance sums it. */
const ENTRIES_WHERE = `je.organization_id = ? and je.entry_date >= ?::date and je.entry_date < ?::date`;

export const LEDGER_ENTRIES_SHEET: WorkbookSheetProvider = {
  name: 'Ledger entries',
  order: 50,
  columns: [
    id('entry_id', 'entry_id'),
    num('line_no', 'line_no', 8),
    id('line_id', 'line_id'),
    date('date', 'entry_date'),
    text('key', 'key', 30),
    text('source_type', 'source_type', 14),
    text('source_id', 'source_id', 38),
    text('account_code', 'account_code', 13),
    text('account', 'account_name', 24),
    id('party_id', 'party_id'),
    money('debit', 'debit'),
    money('credit', 'credit'),
    text('currency', 'currency', 9),
    text('description', 'description', 30),
    id('reverses_entry_id', 'reverses_entry_id'),
    datetime('posted_at', 'created_at'),
  ],
  rows: async function* (em, org, period) {
    const p = params(org, period);
    for await (const r of cursorRows<Record<string, unknown>>(
      em,
      `select je.id as entry_id, jl.line_no, jl.id as line_id, to_char(je.entry_date, 'YYYY-MM-DD') as entry_date, je.key, je.source_type, je.source_id,
              a.code as account_code, a.name as account_name, jl.party_id, jl.debit::text as debit_minor, jl.credit::text as credit_minor,
              je.currency, je.description, je.reverses_entry_id, je.created_at
       from journal_entries je
       join journal_lines jl on jl.entry_id = je.id
       join ledger_accounts a on a.id = jl.account_id
       where ${ENTRIES_WHERE}
       order by je.entry_date, je.created_at, je.id, jl.line_no`,
      p,
    )) {
      // Journal lines hold integer minor units; the sheet shows major units in the entry's currency.
      const currency = String(r.currency);
      yield { ...r, debit: minorToMajor(String(r.debit_minor), currency), credit: minorToMajor(String(r.credit_minor), currency) };
    }
  },
  count: (em, org, period) =>
    countOf(em, `select count(*) as n from journal_entries je join journal_lines jl on jl.entry_id = je.id where ${ENTRIES_WHERE}`, params(org, period)),
};

/**
 * Entries made in the month, and — whenever they were written — every entry about the month's
 * documents (its invoices, credit notes and payments) and its close (the accounting period, its
 * reconciliation runs, sign-offs, exceptions and close). Parameters: `auditParams`.
 */
const AUDIT_WHERE = `a.organization_id = ? and (
  (a.created_at >= ? and a.created_at < ?)
  or (a.resource_type = 'invoice' and a.resource_id in (select x.id::text from (${INVOICES_IN_SCOPE}) x))
  or (a.resource_type = 'credit_note' and a.resource_id in (select cn.id::text from credit_notes cn where cn.organization_id = ? and cn.created_at >= ? and cn.created_at < ?))
  or (a.resource_type = 'payment' and a.resource_id in (select p.id::text from payments p where p.organization_id = ? and p.received_at >= ? and p.received_at < ?))
  or (a.resource_type in ('period', 'accounting_period') and a.resource_id = ?)
  or (a.resource_type = 'reconciliation_run' and a.resource_id in (select r.id::text from reconciliation_runs r where r.organization_id = ? and r.period = ?))
  or (a.resource_type = 'close_sign_off' and a.resource_id in (select s.id::text from close_sign_offs s where s.organization_id = ? and s.period = ?))
  or (a.resource_type = 'exception' and a.resource_id in (select e.id::text from exceptions e where e.organization_id = ? and e.period = ?)))`;
const auditParams = (org: string, period: string) => {
  const p = params(org, period);
  return [...p, ...p, ...p, ...p, period, org, period, org, period, org, period];
};

export const AUDIT_LOG_SHEET: WorkbookSheetProvider = {
  name: 'Audit log',
  order: 90,
  columns: [
    id('id', 'id'),
    datetime('at', 'created_at'),
    text('actor', 'actor', 20),
    id('actor_key_id', 'actor_key_id'),
    text('action', 'action', 24),
    text('resource_type', 'resource_type', 16),
    text('resource_id', 'resource_id', 38),
    { header: 'data', key: 'data', width: 50, kind: 'json' },
    text('request_id', 'request_id', 24),
    text('idempotency_key', 'idempotency_key', 24),
  ],
  rows: (em, org, period) =>
    cursorRows(
      em,
      `select a.id, a.created_at, a.actor, a.actor_key_id, a.action, a.resource_type, a.resource_id, a.data::text as data, a.request_id, a.idempotency_key
       from audit_log a where ${AUDIT_WHERE}
       order by a.created_at, a.id`,
      auditParams(org, period),
    ),
  count: (em, org, period) => countOf(em, `select count(*) as n from audit_log a where ${AUDIT_WHERE}`, auditParams(org, period)),
};

async function* noRows(): AsyncGenerator<Record<string, unknown>> {
  // A placeholder sheet: headers and a note row only.
}

/** Stands in until the reconciliation module registers its provider of the same name. */
export const RECONCILIATION_RESULTS_PLACEHOLDER: WorkbookSheetProvider = {
  name: 'Reconciliation results',
  order: 70,
  placeholder: true,
  columns: [id('run_id', 'run_id'), text('check', 'check', 28), text('status', 'status', 10), text('expected', 'expected', 16), text('actual', 'actual', 16), text('difference', 'difference', 16), datetime('ran_at', 'ran_at')],
  rows: noRows,
  emptyNote: 'No reconciliation results provider is registered in this build: the results of the period’s close runs are not included.',
};

export const EXCEPTIONS_PLACEHOLDER: WorkbookSheetProvider = {
  name: 'Exceptions',
  order: 80,
  placeholder: true,
  columns: [id('id', 'id'), text('check', 'check', 28), text('status', 'status', 12), text('owner', 'owner', 16), datetime('opened_at', 'opened_at'), text('description', 'description', 40)],
  rows: noRows,
  emptyNote: 'No exceptions provider is registered in this build: the period’s exceptions are not included.',
};

export const BUILTIN_SHEETS = [
  INVOICES_SHEET,
  INVOICE_LINES_SHEET,
  ROLLUPS_SHEET,
  USAGE_EVENTS_SHEET,
  LEDGER_ENTRIES_SHEET,
  ...DOCUMENT_SHEETS,
  RECONCILIATION_RESULTS_PLACEHOLDER,
  EXCEPTIONS_PLACEHOLDER,
  AUDIT_LOG_SHEET,
];

/** Registers the built-in sheets (and the two placeholders) with the registry. */
@Injectable()
export class BuiltinWorkbookSheets {
  constructor(registry: WorkbookSheetRegistry) {
    for (const sheet of BUILTIN_SHEETS) registry.register(sheet);
  }
}
