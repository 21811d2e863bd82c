import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { getCurrency, Money } from '@closebook/money';
import { AuditService, ConflictError, NotFoundError, UnprocessableError } from '@closebook/platform';
import { ACCOUNTS, STANDARD_CHART } from './chart';
import { addPeriods, firstDay, periodOf, toDate, type DateString, type PeriodString } from './dates';
import { LedgerInputError } from './errors';
import {
  isUuid,
  normalizeEntry,
  reversedLines,
  sameEffect,
  type NormalizedEntry,
  type PostEntryInput,
  type PostingSource,
} from './posting';
import { inTransaction, jsonParam, lockPeriodShared, toInstant } from './sql';

export interface PostedLine {
  lineNo: number;
  accountCode: string;
  partyId: string | null;
  /** Minor units; exactly one of debit / credit is non-zero. */
  debit: bigint;
  credit: bigint;
  memo: string | null;
}

export interface PostedEntry {
  id: string;
  organizationId: string;
  currency: string;
  /** The accounting date (`YYYY-MM-DD`): the requested one, or the first day of the first open month after a closed one. */
  date: DateString;
  key: string;
  sourceType: string;
  sourceId: string;
  description: string;
  reversesEntryId: string | null;
  /** The closed month (`YYYY-MM`) this entry corrects, when it had to be dated later. */
  correctsPeriod: PeriodString | null;
  createdAt: Date;
  lines: PostedLine[];
  /** False when the key had been posted before: this is that first entry, nothing was written. */
  created: boolean;
}

export interface ReverseInput {
  organizationId: string;
  entryId: string;
  /** Date of the reversal (not before the original's date). */
  date: string | Date;
  reason: string;
}

export interface AccrualInput {
  organizationId: string;
  /** Caller's key for the accrual (e.g. `usage:{subscription}:{YYYY-MM}`); the entry's key is `accrual:{key}`. */
  key: string;
  /** Month end the accrual is dated on. */
  date: string | Date;
  /** Rounded usage revenue earned but not billed; its currency is the entry's. */
  amount: Money;
  /** The customer. */
  party: string;
  source?: PostingSource;
  description?: string;
}

export interface ReverseAccrualInput {
  organizationId: string;
  key: string;
  /** Usually the invoice's date. */
  date: string | Date;
  reason?: string;
}

interface EntryRow {
  id: string;
  organization_id: string;
  currency: string;
  entry_date: string;
  key: string;
  source_type: string;
  source_id: string;
  description: string;
  reverses_entry_id: string | null;
  corrects_period: string | null;
  created_at: string;
  line_no: number;
  account_code: string;
  party_id: string | null;
  debit: string;
  credit: string;
  memo: string | null;
}

export const ENTRY_SELECT = `select e.id, e.organization_id, e.currency, e.entry_date::text as entry_date, e.key, e.source_type, e.source_id,
    e.description, e.reverses_entry_id, e.corrects_period, to_json(e.created_at)#>>'{}' as created_at,
    l.line_no, a.code as account_code, l.party_id, l.debit::text as debit, l.credit::text as credit, l.memo
  from journal_entries e
  join journal_lines l on l.entry_id = e.id
  join ledger_accounts a on a.id = l.account_id`;

/** Groups ENTRY_SELECT rows (ordered by entry, then line) into entries. */
export function entriesFromRows(rows: EntryRow[]): PostedEntry[] {
  const byId = new Map<string, PostedEntry>();
  for (const r of rows) {
    let e = byId.get(r.id);
    if (!e) {
      e = {
        id: r.id,
        organizationId: r.organization_id,
        currency: r.currency,
        date: r.entry_date,
        key: r.key,
        sourceType: r.source_type,
        sourceId: r.source_id,
        description: r.description,
        reversesEntryId: r.reverses_entry_id,
        correctsPeriod: r.corrects_period,
        createdAt: toInstant(r.created_at)!,
        lines: [],
        created: false,
      };
      byId.set(r.id, e);
    }
    e.lines.push({
      lineNo: Number(r.line_no),
      accountCode: r.account_code,
      partyId: r.party_id,
      debit: BigInt(r.debit),
      credit: BigInt(r.credit),
      memo: r.memo,
    });
  }
  for (const e of byId.values()) e.lines.sort((a, b) => a.lineNo - b.lineNo);
  return [...byId.values()];
}

/**
 * The double-entry engine: posts balanced, immutable entries in integer minor units through the
 * caller's EntityManager (so a document and its entry commit together), idempotent per key.
 * The database enforces the same rules (balance, immutability, period lock); the checks here give
 * clear errors first.
 */
@Injectable()
export class LedgerService {
  constructor(private readonly audit: AuditService) {}

  /** Creates the standard chart for (organization, currency) if it is missing; idempotent. */
  async ensureChart(em: EntityManager, organizationId: string, currency: string): Promise<void> {
    const code = getCurrency(currency).code;
    await em.execute(
      `insert into ledger_accounts (id, created_at, organization_id, currency, code, name, type, normal_balance, requires_party)
       select x.id, now(), ?::uuid, ?, x.code, x.name, x.type, x.normal_balance, x.requires_party
         from jsonb_to_recordset(?::jsonb) as x(id uuid, code text, name text, type text, normal_balance text, requires_party boolean)
       on conflict (organization_id, currency, code) do nothing`,
      [
        organizationId,
        code,
        jsonParam(
          STANDARD_CHART.map((a) => ({
            id: randomUUID(),
            code: a.code,
            name: a.name,
            type: a.type,
            normal_balance: a.normalBalance,
            requires_party: a.requiresParty,
          })),
        ),
      ],
    );
  }

  /** Account ids by code for (organization, currency), creating the chart on first use. */
  private async accountIds(em: EntityManager, organizationId: string, currency: string): Promise<Map<string, string>> {
    const load = async () =>
      new Map(
        (
          await em.execute<{ id: string; code: string }[]>('select id, code from ledger_accounts where organization_id = ? and currency = ?', [
            organizationId,
            currency,
          ])
        ).map((r) => [r.code, r.id]),
      );
    let ids = await load();
    if (ids.size < STANDARD_CHART.length) {
      await this.ensureChart(em, organizationId, currency);
      ids = await load();
    }
    return ids;
  }

  /**
   * Posts one entry (see PostEntryInput). Posting a key that exists returns that first entry
   * (`created: false`) and writes nothing; the same key with a different effect is a 409.
   * An entry dated in a closed month is dated the first day of the first open month after it,
   * with `correctsPeriod` naming the closed month.
   */
  async post(em: EntityManager, input: PostEntryInput): Promise<PostedEntry> {
    const [entry] = await this.postMany(em, [input]);
    return entry;
  }

  /** Posts many entries in two set-based statements (entries, then lines); same rules as post(). */
  async postMany(em: EntityManager, inputs: PostEntryInput[]): Promise<PostedEntry[]> {
    const normalized = inputs.map((i) => normalizeEntry(i));
    return this.write(em, normalized);
  }

  /**
   * Posts the reversal of an entry (every line's sides swapped), dated `date`, with
   * `reverses_entry_id` set and key `reversal:{entryId}`: reversing twice is one reversal.
   */
  async reverse(em: EntityManager, input: ReverseInput): Promise<PostedEntry> {
    const [posted] = await this.reverseMany(em, [input]);
    return posted;
  }

  /**
   * `reverse` for many entries in a few set-based statements (the originals and their reversals
   * read at once, the new reversals written by one `write`): same rules, keys and audit entries.
   * Each entry at most once per call.
   */
  async reverseMany(em: EntityManager, inputs: readonly ReverseInput[]): Promise<PostedEntry[]> {
    if (!inputs.length) return [];
    const checked = inputs.map((input) => {
      if (!isUuid(input.entryId) || !isUuid(input.organizationId)) throw new NotFoundError('journal entry', String(input.entryId), 'entry_id');
      const reason = typeof input.reason === 'string' ? input.reason.trim() : '';
      if (!reason) throw new LedgerInputError('missing_field', 'a reversal needs a reason', 'reason');
      if (reason.length > 500) throw new LedgerInputError('invalid_value', 'reason must be at most 500 characters', 'reason');
      return { input, reason, date: toDate(input.date, 'date') };
    });
    if (new Set(inputs.map((i) => i.entryId.toLowerCase())).size !== inputs.length) {
      throw new LedgerInputError('invalid_value', 'an entry is reversed at most once per call', 'entry_id');
    }
    return inTransaction(em, async (tx) => {
      const ids = jsonParam(inputs.map((i) => i.entryId.toLowerCase()));
      const originals = new Map(
        entriesFromRows(
          await tx.execute<EntryRow[]>(`${ENTRY_SELECT} where e.id in (select (jsonb_array_elements_text(?::jsonb))::uuid) order by e.id, l.line_no`, [ids]),
        ).map((e) => [e.id, e]),
      );
      const reversals = entriesFromRows(
        await tx.execute<EntryRow[]>(
          `${ENTRY_SELECT} where e.reverses_entry_id in (select (jsonb_array_elements_text(?::jsonb))::uuid) order by e.created_at, e.id, l.line_no`,
          [ids],
        ),
      );
      const out: (PostedEntry | null)[] = [];
      const todo: { at: number; entry: NormalizedEntry; original: PostedEntry; reason: string }[] = [];
      checked.forEach(({ input, reason, date }, at) => {
        const original = originals.get(input.entryId.toLowerCase());
        if (!original || original.organizationId !== input.organizationId.toLowerCase()) throw new NotFoundError('journal entry', input.entryId);
        const key = `reversal:${original.id}`;
        const existing = reversals.find((r) => r.reversesEntryId === original.id && r.key === key);
        if (existing) {
          out.push(existing);
          return;
        }
        const other = reversals.find((r) => r.reversesEntryId === original.id);
        if (other) throw new ConflictError('entry_already_reversed', `journal entry ${original.id} was already reversed by ${other.id}`, 'entry_id');
        if (date < original.date) {
          throw new LedgerInputError('reversal_before_original', `a reversal cannot be dated before the entry it reverses (${original.date})`, 'date');
        }
        out.push(null);
        todo.push({
          at,
          original,
          reason,
          entry: {
            organizationId: original.organizationId,
            currency: original.currency,
            date,
            key,
            sourceType: original.sourceType,
            sourceId: original.sourceId,
            description: `Reversal of "${original.description}": ${reason}`.slice(0, 1000),
            correctsPeriod: null,
            reversesEntryId: original.id,
            lines: reversedLines(original.lines),
          },
        });
      });
      if (todo.length) {
        const posted = await this.write(
          tx,
          todo.map((t) => t.entry),
        );
        posted.forEach((p, i) => {
          const { at, original, reason } = todo[i];
          out[at] = p;
          if (!p.created) return;
          this.audit.record(tx, {
            organizationId: original.organizationId,
            action: 'ledger.entry.reversed',
            resourceType: 'journal_entry',
            resourceId: original.id,
            data: { reversal_entry_id: p.id, reason, date: p.date },
          });
        });
        if (posted.some((p) => p.created)) await tx.flush();
      }
      return out as PostedEntry[];
    });
  }

  /**
   * Month-end accrual of usage earned but not yet billed (a billing period crossing the month end):
   * Dr Unbilled receivables / Cr Revenue — usage, for the customer, key `accrual:{key}`.
   * Returns null (and posts nothing) for a zero amount.
   */
  async accrue(em: EntityManager, input: AccrualInput): Promise<PostedEntry | null> {
    if (!(input.amount instanceof Money)) throw new LedgerInputError('invalid_type', 'amount must be a Money', 'amount');
    if (input.amount.isZero()) return null;
    return this.post(em, this.accrualEntry(input));
  }

  /**
   * Many accruals in two set-based writes: the accruals, then — for those given `reverseOn` (the
   * usage was billed after the month already) — their reversals, linked by `reverses_entry_id` and
   * keyed `reversal:{entry}` exactly as `reverseAccrual` would write them. Zero amounts post nothing;
   * an accrual already posted (its key) is neither posted nor reversed again. Returns the accruals
   * created by this call.
   */
  async accrueMany(em: EntityManager, inputs: (AccrualInput & { reverseOn?: string | Date; reverseReason?: string })[]): Promise<PostedEntry[]> {
    const todo = inputs.filter((i) => {
      if (!(i.amount instanceof Money)) throw new LedgerInputError('invalid_type', 'amount must be a Money', 'amount');
      return !i.amount.isZero();
    });
    if (!todo.length) return [];
    return inTransaction(em, async (tx) => {
      const posted = await this.postMany(tx, todo.map((i) => this.accrualEntry(i)));
      const created = posted.map((p, i) => ({ p, input: todo[i] })).filter((x) => x.p.created);
      const reversals: NormalizedEntry[] = created
        .filter((x) => x.input.reverseOn)
        .map(({ p, input }) => {
          const date = toDate(input.reverseOn!, 'reverseOn');
          return {
            organizationId: p.organizationId,
            currency: p.currency,
            date: date < p.date ? p.date : date,
            key: `reversal:${p.id}`,
            sourceType: p.sourceType,
            sourceId: p.sourceId,
            description: `Reversal of "${p.description}": ${input.reverseReason ?? 'usage invoiced'}`.slice(0, 1000),
            correctsPeriod: null,
            reversesEntryId: p.id,
            lines: reversedLines(p.lines),
          };
        });
      if (reversals.length) await this.write(tx, reversals);
      return created.map((x) => x.p);
    });
  }

  private accrualEntry(input: AccrualInput): PostEntryInput {
    return {
      organizationId: input.organizationId,
      currency: input.amount.currency.code,
      date: input.date,
      key: accrualKey(input.key),
      source: input.source ?? { type: 'usage_accrual', id: input.key },
      description: input.description ?? `Unbilled usage accrued at month end (${input.key})`,
      lines: [
        { account_code: ACCOUNTS.UNBILLED_RECEIVABLES, party_id: input.party, debit: input.amount },
        { account_code: ACCOUNTS.REVENUE_USAGE, party_id: input.party, credit: input.amount },
      ],
    };
  }

  /**
   * Reverses the accrual posted under `key` (when the invoice for the usage posts). Returns null when
   * no accrual was posted under that key; reversing twice is one reversal.
   */
  async reverseAccrual(em: EntityManager, input: ReverseAccrualInput): Promise<PostedEntry | null> {
    const [reversal] = await this.reverseAccruals(em, [input]);
    return reversal;
  }

  /** `reverseAccrual` for many keys: the accruals read in one statement per organization, reversed by `reverseMany`. */
  async reverseAccruals(em: EntityManager, inputs: readonly ReverseAccrualInput[]): Promise<(PostedEntry | null)[]> {
    if (!inputs.length) return [];
    const keys = inputs.map((i) => accrualKey(i.key));
    return inTransaction(em, async (tx) => {
      const found = new Map<string, PostedEntry>();
      for (const orgId of new Set(inputs.map((i) => i.organizationId))) {
        const mine = keys.filter((_k, i) => inputs[i].organizationId === orgId);
        const rows = await tx.execute<EntryRow[]>(
          `${ENTRY_SELECT} where e.organization_id = ? and e.key in (select jsonb_array_elements_text(?::jsonb)) order by e.id, l.line_no`,
          [orgId, jsonParam(mine)],
        );
        for (const e of entriesFromRows(rows)) found.set(`${orgId}\u0000${e.key}`, e);
      }
      const todo: { at: number; input: ReverseAccrualInput; accrual: PostedEntry }[] = [];
      inputs.forEach((input, at) => {
        const accrual = found.get(`${input.organizationId}\u0000${keys[at]}`);
        if (accrual) todo.push({ at, input, accrual });
      });
      const out: (PostedEntry | null)[] = inputs.map(() => null);
      const reversed = await this.reverseMany(
        tx,
        todo.map(({ input, accrual }) => ({ organizationId: input.organizationId, entryId: accrual.id, date: input.date, reason: input.reason ?? 'usage invoiced' })),
      );
      reversed.forEach((r, i) => (out[todo[i].at] = r));
      return out;
    });
  }

  /** One entry with its lines; another organization's entry is a 404. */
  async getEntry(em: EntityManager, organizationId: string, entryId: string): Promise<PostedEntry> {
    if (!isUuid(entryId) || !isUuid(organizationId)) throw new NotFoundError('journal entry', String(entryId));
    const rows = await em.execute<EntryRow[]>(`${ENTRY_SELECT} where e.organization_id = ? and e.id = ? order by l.line_no`, [organizationId, entryId]);
    const [entry] = entriesFromRows(rows);
    if (!entry) throw new NotFoundError('journal entry', entryId);
    return entry;
  }

  async findByKey(em: EntityManager, organizationId: string, key: string): Promise<PostedEntry | null> {
    const rows = await em.execute<EntryRow[]>(`${ENTRY_SELECT} where e.organization_id = ? and e.key = ? order by l.line_no`, [organizationId, key]);
    return entriesFromRows(rows)[0] ?? null;
  }

  /** Every entry recorded for a source document (its postings and their reversals), by date then posting order. */
  async entriesForSource(em: EntityManager, organizationId: string, sourceType: string, sourceId: string): Promise<PostedEntry[]> {
    const rows = await em.execute<EntryRow[]>(
      `${ENTRY_SELECT} where e.organization_id = ? and e.source_type = ? and e.source_id = ? order by e.entry_date, e.created_at, e.id, l.line_no`,
      [organizationId, sourceType, sourceId],
    );
    return entriesFromRows(rows);
  }

  /**
   * Months that entries dated in `months` must move to: each closed month maps to the first day of
   * the first month after it that is not closed. Takes the shared period locks (in order) so a
   * concurrent close waits for this transaction, and this one sees a close that committed first.
   */
  private async openTargets(em: EntityManager, organizationId: string, months: PeriodString[]): Promise<Map<PeriodString, PeriodString>> {
    const sorted = [...new Set(months)].sort();
    for (const m of sorted) await lockPeriodShared(em, organizationId, m);
    const closedRows = await em.execute<{ period: string }[]>(
      `select period from accounting_periods where organization_id = ? and status = 'closed' and period >= ?`,
      [organizationId, sorted[0]],
    );
    const closed = new Set(closedRows.map((r) => r.period));
    const targets = new Map<PeriodString, PeriodString>();
    for (const m of sorted) {
      let t = m;
      while (closed.has(t)) {
        t = addPeriods(t, 1);
        if (!closed.has(t)) {
          // Lock the target, then make sure it did not close while we were looking.
          await lockPeriodShared(em, organizationId, t);
          const [row] = await em.execute<{ status: string }[]>('select status from accounting_periods where organization_id = ? and period = ?', [
            organizationId,
            t,
          ]);
          if (row?.status === 'closed') closed.add(t);
        }
      }
      targets.set(m, t);
    }
    return targets;
  }

  /** Writes normalized entries: INSERT … ON CONFLICT (organization_id, key) DO NOTHING, then their lines. */
  private async write(em: EntityManager, entries: NormalizedEntry[]): Promise<PostedEntry[]> {
    if (entries.length === 0) return [];
    return inTransaction(em, async (tx) => {
      // One entry per key within the batch (a repeat must have the same effect).
      const firstByKey = new Map<string, NormalizedEntry>();
      for (const e of entries) {
        const k = `${e.organizationId}\u0000${e.key}`;
        const first = firstByKey.get(k);
        if (!first) firstByKey.set(k, e);
        else if (!sameEffect(e, first)) throw keyConflict(e.key);
      }
      const unique = [...firstByKey.values()];

      // Accounts and open months, per organization (and currency).
      const accountIdsBy = new Map<string, Map<string, string>>();
      const targetsBy = new Map<string, Map<PeriodString, PeriodString>>();
      for (const orgId of new Set(unique.map((e) => e.organizationId))) {
        const mine = unique.filter((e) => e.organizationId === orgId);
        for (const currency of new Set(mine.map((e) => e.currency))) {
          accountIdsBy.set(`${orgId}:${currency}`, await this.accountIds(tx, orgId, currency));
        }
        targetsBy.set(orgId, await this.openTargets(tx, orgId, mine.map((e) => periodOf(e.date))));
      }

      const rows = unique.map((e) => {
        const month = periodOf(e.date);
        const target = targetsBy.get(e.organizationId)!.get(month)!;
        const moved = target !== month;
        return {
          entry: e,
          id: randomUUID(),
          date: moved ? firstDay(target) : e.date,
          correctsPeriod: e.correctsPeriod ?? (moved ? month : null),
        };
      });
      const inserted = await tx.execute<{ id: string; key: string; organization_id: string; created_at: string }[]>(
        `insert into journal_entries (id, created_at, organization_id, currency, entry_date, key, source_type, source_id, description, reverses_entry_id, corrects_period)
         select x.id, now(), x.organization_id, x.currency, x.entry_date, x.key, x.source_type, x.source_id, x.description, x.reverses_entry_id, x.corrects_period
           from jsonb_to_recordset(?::jsonb) as x(id uuid, organization_id uuid, currency text, entry_date date, key text, source_type text,
                                                  source_id text, description text, reverses_entry_id uuid, corrects_period text)
         on conflict (organization_id, key) do nothing
         returning id, key, organization_id, to_json(created_at)#>>'{}' as created_at`,
        [
          jsonParam(
            rows.map((r) => ({
              id: r.id,
              organization_id: r.entry.organizationId,
              currency: r.entry.currency,
              entry_date: r.date,
              key: r.entry.key,
              source_type: r.entry.sourceType,
              source_id: r.entry.sourceId,
              description: r.entry.description,
              reverses_entry_id: r.entry.reversesEntryId,
              corrects_period: r.correctsPeriod,
            })),
          ),
        ],
      );
      const insertedIds = new Map(inserted.map((r) => [r.id, r]));
      const lineRows = rows
        .filter((r) => insertedIds.has(r.id))
        .flatMap((r) => {
          const ids = accountIdsBy.get(`${r.entry.organizationId}:${r.entry.currency}`)!;
          return r.entry.lines.map((l) => ({
            id: randomUUID(),
            organization_id: r.entry.organizationId,
            entry_id: r.id,
            line_no: l.lineNo,
            account_id: ids.get(l.accountCode),
            party_id: l.partyId,
            debit: l.debit,
            credit: l.credit,
            memo: l.memo,
          }));
        });
      for (const l of lineRows) {
        if (!l.account_id) throw new LedgerInputError('unknown_account', 'an account of the entry is missing from the chart', 'lines');
      }
      if (lineRows.length) {
        await tx.execute(
          `insert into journal_lines (id, created_at, organization_id, entry_id, line_no, account_id, party_id, debit, credit, memo)
           select x.id, now(), x.organization_id, x.entry_id, x.line_no, x.account_id, x.party_id, x.debit, x.credit, x.memo
             from jsonb_to_recordset(?::jsonb) as x(id uuid, organization_id uuid, entry_id uuid, line_no int, account_id uuid,
                                                    party_id uuid, debit bigint, credit bigint, memo text)`,
          [jsonParam(lineRows)],
        );
      }

      // Keys that existed: return the first entry, after checking it has the same effect.
      const existingByKey = new Map<string, PostedEntry>();
      const missing = rows.filter((r) => !insertedIds.has(r.id));
      for (const orgId of new Set(missing.map((r) => r.entry.organizationId))) {
        const keys = missing.filter((r) => r.entry.organizationId === orgId).map((r) => r.entry.key);
        const found = entriesFromRows(
          await tx.execute<EntryRow[]>(
            `${ENTRY_SELECT} where e.organization_id = ? and e.key in (select jsonb_array_elements_text(?::jsonb)) order by e.id, l.line_no`,
            [orgId, jsonParam(keys)],
          ),
        );
        for (const f of found) existingByKey.set(`${orgId}\u0000${f.key}`, f);
      }

      const byKey = new Map<string, PostedEntry>();
      for (const r of rows) {
        const k = `${r.entry.organizationId}\u0000${r.entry.key}`;
        const ins = insertedIds.get(r.id);
        if (ins) {
          byKey.set(k, {
            id: r.id,
            organizationId: r.entry.organizationId,
            currency: r.entry.currency,
            date: r.date,
            key: r.entry.key,
            sourceType: r.entry.sourceType,
            sourceId: r.entry.sourceId,
            description: r.entry.description,
            reversesEntryId: r.entry.reversesEntryId,
            correctsPeriod: r.correctsPeriod,
            createdAt: toInstant(ins.created_at)!,
            lines: r.entry.lines.map((l) => ({ ...l })),
            created: true,
          });
        } else {
          const prior = existingByKey.get(k);
          if (!prior) throw new UnprocessableError('ledger_write_failed', `entry ${r.entry.key} was neither written nor found`);
          if (!sameEffect(r.entry, prior)) throw keyConflict(r.entry.key);
          byKey.set(k, prior);
        }
      }
      return entries.map((e) => byKey.get(`${e.organizationId}\u0000${e.key}`)!);
    });
  }
}

export function accrualKey(key: string): string {
  if (typeof key !== 'string' || !key.trim()) throw new LedgerInputError('missing_field', 'key must not be empty', 'key');
  return `accrual:${key}`;
}

function keyConflict(key: string): ConflictError {
  return new ConflictError('ledger_key_conflict', `entry key ${JSON.stringify(key)} was already posted with different lines`, 'key');
}

