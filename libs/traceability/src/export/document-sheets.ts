import { countOf, cursorRows } from './sql';
import { datetime, id, money, monthParams as params, num, text } from './columns';
import type { WorkbookSheetProvider } from './sheet-registry';

/**
 * Credit notes and payments of the month (docs/exports.md "Period scope"): each on its accounting
 * date — a credit note the day it was created, a payment the day it was received — with the
 * invoice (and line) it relates to and the journal entry that posted it.
 */

/** The (first, not reversing) journal entry of a document. */
const entryOf = (type: string, idCol: string) =>
  `(select je.id from journal_entries je where je.organization_id = ${idCol.split('.')[0]}.organization_id and je.source_type = '${type}'
     and je.source_id = ${idCol}::text and je.reverses_entry_id is null order by je.created_at, je.id limit 1)`;

const NOTES_WHERE = `cn.organization_id = ? and cn.created_at >= ? and cn.created_at < ?`;

export const CREDIT_NOTES_SHEET: WorkbookSheetProvider = {
  name: 'Credit notes',
  order: 60,
  columns: [
    id('id', 'id'),
    text('number', 'number', 12),
    datetime('created_at', 'created_at'),
    text('customer', 'customer', 20),
    id('customer_id', 'customer_id'),
    id('invoice_id', 'invoice_id'),
    text('invoice_number', 'invoice_number', 14),
    text('reason', 'reason', 30),
    money('subtotal', 'subtotal'),
    money('tax', 'tax'),
    money('total', 'total'),
    text('currency', 'currency', 9),
    id('entry_id', 'entry_id'),
  ],
  rows: (em, org, period) =>
    cursorRows(
      em,
      `select cn.id, cn.number, cn.created_at, c.external_id as customer, cn.customer_id, cn.invoice_id, i.number as invoice_number, cn.reason,
              cn.subtotal::text as subtotal, cn.tax_amount::text as tax, cn.total::text as total, cn.currency, ${entryOf('credit_note', 'cn.id')} as entry_id
       from credit_notes cn join customers c on c.id = cn.customer_id join invoices i on i.id = cn.invoice_id
       where ${NOTES_WHERE}
       order by cn.created_at, cn.id`,
      params(org, period),
    ),
  count: (em, org, period) => countOf(em, `select count(*) as n from credit_notes cn where ${NOTES_WHERE}`, params(org, period)),
  emptyNote: 'No credit note was issued in the month.',
};

export const CREDIT_NOTE_LINES_SHEET: WorkbookSheetProvider = {
  name: 'Credit note lines',
  order: 62,
  columns: [
    id('id', 'id'),
    id('credit_note_id', 'credit_note_id'),
    text('credit_note_number', 'credit_note_number', 12),
    id('invoice_id', 'invoice_id'),
    id('invoice_line_id', 'invoice_line_id'),
    text('line_type', 'line_type', 16),
    text('product', 'product_key', 18),
    text('description', 'description', 40),
    num('quantity', 'quantity'),
    money('amount', 'amount'),
    text('currency', 'currency', 9),
  ],
  rows: (em, org, period) =>
    cursorRows(
      em,
      `select x.id, cn.id as credit_note_id, cn.number as credit_note_number, cn.invoice_id, x.invoice_line_id, il.type as line_type, il.product_key,
              x.description, x.quantity::text as quantity, x.amount::text as amount, cn.currency
       from credit_notes cn join credit_note_lines x on x.credit_note_id = cn.id left join invoice_lines il on il.id = x.invoice_line_id
       where ${NOTES_WHERE}
       order by cn.created_at, cn.id, x.id`,
      params(org, period),
    ),
  count: (em, org, period) => countOf(em, `select count(*) as n from credit_notes cn join credit_note_lines x on x.credit_note_id = cn.id where ${NOTES_WHERE}`, params(org, period)),
  emptyNote: 'No credit note was issued in the month.',
};

const PAYMENTS_WHERE = `p.organization_id = ? and p.received_at >= ? and p.received_at < ?`;

export const PAYMENTS_SHEET: WorkbookSheetProvider = {
  name: 'Payments',
  order: 64,
  columns: [
    id('id', 'id'),
    datetime('received_at', 'received_at'),
    text('customer', 'customer', 20),
    id('customer_id', 'customer_id'),
    id('invoice_id', 'invoice_id'),
    text('invoice_number', 'invoice_number', 14),
    money('amount', 'amount'),
    text('currency', 'currency', 9),
    text('reference', 'reference', 24),
    datetime('recorded_at', 'created_at'),
    id('entry_id', 'entry_id'),
  ],
  rows: (em, org, period) =>
    cursorRows(
      em,
      `select p.id, p.received_at, c.external_id as customer, p.customer_id, p.invoice_id, i.number as invoice_number, p.amount::text as amount, p.currency,
              p.reference, p.created_at, ${entryOf('payment', 'p.id')} as entry_id
       from payments p join customers c on c.id = p.customer_id join invoices i on i.id = p.invoice_id
       where ${PAYMENTS_WHERE}
       order by p.received_at, p.id`,
      params(org, period),
    ),
  count: (em, org, period) => countOf(em, `select count(*) as n from payments p where ${PAYMENTS_WHERE}`, params(org, period)),
  emptyNote: 'No payment was received in the month.',
};

export const DOCUMENT_SHEETS = [CREDIT_NOTES_SHEET, CREDIT_NOTE_LINES_SHEET, PAYMENTS_SHEET];
