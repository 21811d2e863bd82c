/**
 * The posting rules (SPEC §5), pure: which accounts an invoice, a credit note and a payment move,
 * by how much. No I/O — LedgerPostingHook writes what these return in the document's transaction.
 * Rules and the reasons for them: docs/ledger.md "Posting rules".
 */
import { Money } from '@closebook/money';
import { ACCOUNTS, type PostingLine } from '@closebook/ledger';
import type { LineType } from '@closebook/rating';

export interface PostableLine {
  id: string;
  type: LineType;
  /** Rounded, signed decimal string in the invoice currency. */
  amount: string;
  periodStart: Date;
  periodEnd: Date;
  meta: Record<string, unknown>;
}

export interface PostableInvoice {
  customerId: string;
  currency: string;
  total: string;
  taxAmount: string;
}

/** A fee billed in advance: its deferral schedule moves it from Deferred revenue to `toAccount` over its service period. */
export interface Deferral {
  lineId: string;
  amount: Money;
  /** UTC days, [start, end). */
  serviceStart: string;
  serviceEnd: string;
  toAccount: string;
}

export interface InvoicePosting {
  lines: PostingLine[];
  deferrals: Deferral[];
}

/** The UTC calendar day of an instant (schedules run by day; a period may start mid-day). */
export const dayOf = (d: Date): string => new Date(d).toISOString().slice(0, 10);

const FEE_TYPES = new Set<LineType>(['base_fee', 'seat', 'addon', 'proration_charge']);

/** The revenue account a fee recognizes into: plan fees to subscription, seats and add-ons to theirs. */
export function feeRevenueAccount(line: Pick<PostableLine, 'type' | 'meta'>): string {
  if (line.type === 'seat' || line.type === 'addon') return ACCOUNTS.REVENUE_SEATS_ADDONS;
  const component = typeof line.meta.component === 'string' ? line.meta.component : '';
  if (component.startsWith('seat:') || component.startsWith('addon:')) return ACCOUNTS.REVENUE_SEATS_ADDONS;
  return ACCOUNTS.REVENUE_SUBSCRIPTION;
}

/** Where a non-fee line's revenue goes when positive (negative amounts always debit contra-revenue). */
function revenueAccount(type: LineType): string {
  switch (type) {
    case 'usage_included':
    case 'usage_overage':
    case 'adjustment':
      return ACCOUNTS.REVENUE_USAGE;
    case 'on_demand':
      return ACCOUNTS.REVENUE_SERVICES;
    default:
      return ACCOUNTS.REVENUE_SUBSCRIPTION;
  }
}

/** Accumulates signed amounts per (account, party): credit-positive for revenue-side lines. */
class Book {
  private readonly sums = new Map<string, { account: string; party: string | null; net: Money }>();

  constructor(private readonly currency: string) {}

  /** `net` > 0 is a debit, < 0 a credit. */
  add(account: string, party: string | null, net: Money): void {
    const k = `${account}|${party ?? ''}`;
    const cur = this.sums.get(k);
    if (cur) cur.net = cur.net.plus(net);
    else this.sums.set(k, { account, party, net });
  }

  lines(): PostingLine[] {
    const out: PostingLine[] = [];
    for (const { account, party, net } of this.sums.values()) {
      if (net.isZero()) continue;
      out.push({ account_code: account, ...(party ? { party_id: party } : {}), ...(net.isPositive() ? { debit: net } : { credit: net.negated() }) });
    }
    // Debits first, then by account: a stable, readable order.
    return out.sort((a, b) => Number(!a.debit) - Number(!b.debit) || a.account_code.localeCompare(b.account_code));
  }
}

/**
 * A finalized invoice: Dr Accounts receivable (the customer) total; Cr Deferred revenue for fees
 * billed in advance (each with its deferral schedule); Cr Revenue — usage for usage and late-usage
 * adjustments; Cr Revenue — services for on-demand charges; Dr Contra-revenue for proration credits,
 * credits and any negative line; Cr Tax payable for the tax. Balanced by construction: the total is
 * Σ lines + tax (checked, since a stored invoice could say otherwise).
 */
export function invoicePosting(invoice: PostableInvoice, lines: readonly PostableLine[]): InvoicePosting {
  const cur = invoice.currency;
  const book = new Book(cur);
  const deferrals: Deferral[] = [];
  let sum = Money.zero(cur);
  for (const line of lines) {
    const amount = Money.parse(line.amount, cur);
    sum = sum.plus(amount);
    if (amount.isZero()) continue;
    if (amount.isNegative() || line.type === 'proration_credit' || line.type === 'credit') {
      book.add(ACCOUNTS.CONTRA_REVENUE_CREDITS, null, amount.negated());
    } else if (FEE_TYPES.has(line.type) && dayOf(line.periodEnd) <= dayOf(line.periodStart)) {
      // Service within one calendar day: nothing to defer across months.
      book.add(feeRevenueAccount(line), null, amount.negated());
    } else if (FEE_TYPES.has(line.type)) {
      book.add(ACCOUNTS.DEFERRED_REVENUE, invoice.customerId, amount.negated());
      deferrals.push({ lineId: line.id, amount, serviceStart: dayOf(line.periodStart), serviceEnd: dayOf(line.periodEnd), toAccount: feeRevenueAccount(line) });
    } else {
      book.add(revenueAccount(line.type), null, amount.negated());
    }
  }
  const tax = Money.parse(invoice.taxAmount, cur);
  const total = Money.parse(invoice.total, cur);
  if (!sum.plus(tax).equals(total)) {
    throw new Error(`invoice total ${total.format()} is not the sum of its lines ${sum.format()} plus tax ${tax.format()}`);
  }
  book.add(ACCOUNTS.TAX_PAYABLE, null, tax.negated());
  book.add(ACCOUNTS.ACCOUNTS_RECEIVABLE, invoice.customerId, total);
  return { lines: book.lines(), deferrals };
}

export interface PostableCreditNote {
  customerId: string;
  currency: string;
  subtotal: string;
  taxAmount: string;
  total: string;
}

/**
 * A credit note: Dr Contra-revenue (the credited amount before tax), Dr Tax payable (its tax); Cr
 * Accounts receivable for as much as the invoice still has due before this note, and Cr Customer
 * credits for the rest (an invoice already paid gets the whole note as a credit balance).
 */
export function creditNotePosting(note: PostableCreditNote, dueBefore: Money): PostingLine[] {
  const cur = note.currency;
  const book = new Book(cur);
  const total = Money.parse(note.total, cur);
  const subtotal = Money.parse(note.subtotal, cur);
  const tax = Money.parse(note.taxAmount, cur);
  if (!subtotal.plus(tax).equals(total)) throw new Error(`credit note total ${total.format()} is not its subtotal plus tax`);
  const due = dueBefore.isPositive() ? dueBefore : Money.zero(cur);
  const toReceivable = total.compare(due) <= 0 ? total : due;
  book.add(ACCOUNTS.CONTRA_REVENUE_CREDITS, null, subtotal);
  book.add(ACCOUNTS.TAX_PAYABLE, null, tax);
  book.add(ACCOUNTS.ACCOUNTS_RECEIVABLE, note.customerId, toReceivable.negated());
  book.add(ACCOUNTS.CUSTOMER_CREDITS, note.customerId, total.minus(toReceivable).negated());
  return book.lines();
}

/** A payment: Dr Cash, Cr Accounts receivable (the customer). */
export function paymentPosting(payment: { customerId: string; currency: string; amount: string }): PostingLine[] {
  const amount = Money.parse(payment.amount, payment.currency);
  return [
    { account_code: ACCOUNTS.CASH, debit: amount },
    { account_code: ACCOUNTS.ACCOUNTS_RECEIVABLE, party_id: payment.customerId, credit: amount },
  ];
}
