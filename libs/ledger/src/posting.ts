import { isUuid } from '@closebook/platform';
/**
 * The pure part of posting: an entry as callers describe it → the normalized, validated entry the
 * service writes (integer minor units, one side per line, balanced). No I/O, no Nest.
 */
import { getCurrency, Money } from '@closebook/money';
import { accountDefinition } from './chart';
import { assertPeriod, toDate, type DateString, type PeriodString } from './dates';
import { LedgerInputError } from './errors';

/** An amount of a line: a rounded Money in the entry's currency, or integer minor units. */
export type LineAmount = Money | bigint;

export interface PostingLine {
  /** A code of the chart (`ACCOUNTS.*`). */
  account_code: string;
  /** The customer (or other counterparty) the line concerns; required on Accounts receivable. */
  party_id?: string | null;
  /** Exactly one of debit / credit is non-zero; both ≥ 0. A line whose amount is zero is dropped. */
  debit?: LineAmount | null;
  credit?: LineAmount | null;
  memo?: string | null;
}

export interface PostingSource {
  /** What the entry records: `invoice`, `credit_note`, `payment`, `deferral_schedule`, ... */
  type: string;
  id: string;
}

export interface PostEntryInput {
  organizationId: string;
  /** ISO 4217 code; every account of the entry is in this currency. */
  currency: string;
  /** The accounting date: `YYYY-MM-DD`, or an instant (its UTC day). */
  date: string | Date;
  /** Unique per organization: posting the same key twice is one entry (the first). */
  key: string;
  source: PostingSource;
  description: string;
  lines: PostingLine[];
  /** `YYYY-MM` this entry corrects (set automatically when the date's month is closed). */
  correctsPeriod?: string | null;
}

export interface NormalizedLine {
  lineNo: number;
  accountCode: string;
  partyId: string | null;
  debit: bigint;
  credit: bigint;
  memo: string | null;
}

export interface NormalizedEntry {
  organizationId: string;
  currency: string;
  date: DateString;
  key: string;
  sourceType: string;
  sourceId: string;
  description: string;
  correctsPeriod: PeriodString | null;
  reversesEntryId: string | null;
  lines: NormalizedLine[];
}

export const MAX_LINES_PER_ENTRY = 5000;
export { isUuid } from '@closebook/platform';

function text(v: unknown, field: string, max: number, opts: { allowEmpty?: boolean } = {}): string {
  if (typeof v !== 'string') throw new LedgerInputError('invalid_type', `${field} must be a string`, field);
  if (!opts.allowEmpty && v.trim() === '') throw new LedgerInputError('missing_field', `${field} must not be empty`, field);
  if (v.length > max) throw new LedgerInputError('invalid_value', `${field} must be at most ${max} characters`, field);
  return v;
}

function minor(v: LineAmount | null | undefined, currency: string, field: string): bigint {
  if (v === undefined || v === null) return 0n;
  let n: bigint;
  if (typeof v === 'bigint') n = v;
  else if (v instanceof Money) {
    if (v.currency.code !== currency) {
      throw new LedgerInputError('currency_mismatch', `${field} is in ${v.currency.code}, the entry in ${currency}`, field);
    }
    if (!v.isRounded()) throw new LedgerInputError('not_rounded', `${field} has more decimals than ${currency} has minor units; round it first`, field);
    n = v.toMinorUnits();
  } else {
    throw new LedgerInputError('invalid_type', `${field} must be a Money or a bigint of minor units`, field);
  }
  if (n < 0n) throw new LedgerInputError('negative_amount', `${field} must not be negative (post the other side instead)`, field);
  return n;
}

/**
 * Validates and normalizes an entry. Lines with a zero amount are dropped; what remains must be at
 * least two lines, each with exactly one side, whose debits equal their credits.
 */
export function normalizeEntry(input: PostEntryInput, reversesEntryId: string | null = null): NormalizedEntry {
  if (!input || typeof input !== 'object') throw new LedgerInputError('invalid_type', 'entry must be an object', 'entry');
  if (!isUuid(input.organizationId)) throw new LedgerInputError('invalid_value', 'organizationId must be a uuid', 'organizationId');
  let currency: string;
  try {
    currency = getCurrency(input.currency).code;
  } catch {
    throw new LedgerInputError('unknown_currency', `${JSON.stringify(input.currency)} is not an ISO 4217 currency code`, 'currency');
  }
  const key = text(input.key, 'key', 300);
  if (!input.source || typeof input.source !== 'object') throw new LedgerInputError('missing_field', 'source is required', 'source');
  const sourceType = text(input.source.type, 'source.type', 100);
  const sourceId = text(input.source.id, 'source.id', 200);
  const description = text(input.description ?? '', 'description', 1000, { allowEmpty: true });
  const date = toDate(input.date, 'date');
  const correctsPeriod = input.correctsPeriod == null ? null : assertPeriod(input.correctsPeriod, 'correctsPeriod');
  if (!Array.isArray(input.lines)) throw new LedgerInputError('invalid_type', 'lines must be an array', 'lines');
  if (input.lines.length > MAX_LINES_PER_ENTRY) {
    throw new LedgerInputError('too_many_lines', `an entry has at most ${MAX_LINES_PER_ENTRY} lines`, 'lines');
  }

  const lines: NormalizedLine[] = [];
  let debits = 0n;
  let credits = 0n;
  input.lines.forEach((l, i) => {
    const f = `lines[${i}]`;
    if (!l || typeof l !== 'object') throw new LedgerInputError('invalid_type', `${f} must be an object`, f);
    const def = accountDefinition(l.account_code);
    if (!def) throw new LedgerInputError('unknown_account', `${f}.account_code ${JSON.stringify(l.account_code)} is not in the chart of accounts`, `${f}.account_code`);
    const partyId = l.party_id ?? null;
    if (partyId !== null && !isUuid(partyId)) throw new LedgerInputError('invalid_value', `${f}.party_id must be a uuid`, `${f}.party_id`);
    const debit = minor(l.debit, currency, `${f}.debit`);
    const credit = minor(l.credit, currency, `${f}.credit`);
    if (debit > 0n && credit > 0n) throw new LedgerInputError('both_sides', `${f} has both a debit and a credit; split it in two lines`, f);
    if (debit === 0n && credit === 0n) return;
    if (def.requiresParty && partyId === null) {
      throw new LedgerInputError('party_required', `${f}: ${def.name} (${def.code}) lines must name their party (party_id)`, `${f}.party_id`);
    }
    const memo = l.memo == null ? null : text(l.memo, `${f}.memo`, 500, { allowEmpty: true });
    debits += debit;
    credits += credit;
    lines.push({ lineNo: lines.length + 1, accountCode: def.code, partyId: partyId === null ? null : partyId.toLowerCase(), debit, credit, memo });
  });
  if (lines.length < 2) {
    throw new LedgerInputError('too_few_lines', `an entry needs at least two non-zero lines, got ${lines.length}`, 'lines');
  }
  if (debits !== credits) {
    throw new LedgerInputError(
      'unbalanced_entry',
      `debits (${Money.fromMinorUnits(debits, currency).format()}) must equal credits (${Money.fromMinorUnits(credits, currency).format()})`,
      'lines',
    );
  }
  return {
    organizationId: input.organizationId.toLowerCase(),
    currency,
    date,
    key,
    sourceType,
    sourceId,
    description,
    correctsPeriod,
    reversesEntryId,
    lines,
  };
}

/** The lines of a reversal: each side swapped. */
export function reversedLines(lines: readonly NormalizedLine[]): NormalizedLine[] {
  return lines.map((l) => ({ ...l, debit: l.credit, credit: l.debit }));
}

/** Same effect on the books (currency, source and lines; not the date, which a closed month moves). */
export function sameEffect(a: NormalizedEntry, b: Pick<NormalizedEntry, 'currency' | 'sourceType' | 'sourceId' | 'lines'>): boolean {
  if (a.currency !== b.currency || a.sourceType !== b.sourceType || a.sourceId !== b.sourceId) return false;
  if (a.lines.length !== b.lines.length) return false;
  return a.lines.every((l, i) => {
    const o = b.lines[i];
    return l.accountCode === o.accountCode && (l.partyId ?? null) === (o.partyId ?? null) && l.debit === o.debit && l.credit === o.credit;
  });
}

export function sumDebits(lines: readonly NormalizedLine[]): bigint {
  return lines.reduce((s, l) => s + l.debit, 0n);
}
