import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { getCurrency, Money } from '@closebook/money';
import { AuditService, ConflictError, decodeCursor, JobsService, NotFoundError } from '@closebook/platform';
import { ACCOUNTS, accountDefinition } from './chart';
import { addPeriods, assertPeriod, firstDay, lastDay, periodIndex, toDate, type DateString, type PeriodString } from './dates';
import { LedgerInputError } from './errors';
import { LedgerService } from './ledger.service';
import { isUuid, type PostEntryInput, type PostingSource } from './posting';
import { recognitionShares, type RecognitionShare } from './recognition';
import { inTransaction, jsonParam, rawCursor, toInstant } from './sql';

export interface CreateScheduleInput {
  organizationId: string;
  /** Unique per organization (e.g. `invoice_line:{id}`): creating it twice is one schedule. */
  key: string;
  source: PostingSource;
  /** Rounded, positive; its currency is the schedule's. */
  total: Money;
  /** Service period [start, end): `YYYY-MM-DD` or instants at 00:00 UTC (a billing period's bounds). */
  serviceStart: string | Date;
  serviceEnd: string | Date;
  /** Defaults to Deferred revenue. */
  fromAccount?: string;
  /** A revenue account code (ACCOUNTS.REVENUE_*). */
  toAccount: string;
  /** The customer. */
  partyId?: string | null;
  description?: string;
  /** The day the amount was booked (e.g. the invoice's finalization day): nothing is recognized dated before it. */
  recognizeFrom?: string | Date | null;
}

export interface DeferralScheduleView {
  id: string;
  organizationId: string;
  currency: string;
  key: string;
  sourceType: string;
  sourceId: string;
  description: string;
  total: Money;
  serviceStart: DateString;
  serviceEnd: DateString;
  fromAccount: string;
  toAccount: string;
  partyId: string | null;
  finalPeriod: PeriodString;
  /** No share is recognized dated before this day (null: no limit). */
  recognizeFrom: string | null;
  createdAt: Date;
  /** False when the key existed: this is the first schedule, nothing was written. */
  created: boolean;
}

export interface ScheduleProgress extends DeferralScheduleView {
  /** Each month's planned share and the recognition entry posted for it, if any. */
  months: { period: PeriodString; amount: Money; entryId: string | null; entryDate: DateString | null }[];
  recognized: Money;
  remaining: Money;
}

export interface RecognitionRunResult {
  organizationId: string;
  period: PeriodString;
  /** Schedules not yet fully recognized that started by the end of the month. */
  schedules: number;
  /** Entries written by this run (0 when it had run before). */
  entriesPosted: number;
  /** Amount recognized by this run, per currency. */
  recognized: Record<string, Money>;
}

interface ScheduleRow {
  id: string;
  organization_id: string;
  currency: string;
  key: string;
  source_type: string;
  source_id: string;
  description: string;
  total_minor: string;
  service_start: string;
  service_end: string;
  from_account: string;
  to_account: string;
  party_id: string | null;
  final_period: string;
  created_at: string;
  recognize_from: string | null;
}

const SCHEDULE_COLUMNS = `id, organization_id, currency, key, source_type, source_id, description, total_minor::text as total_minor,
  service_start::text as service_start, service_end::text as service_end, from_account, to_account, party_id, final_period,
  to_json(created_at)#>>'{}' as created_at, recognize_from::text as recognize_from`;

function toView(r: ScheduleRow, created: boolean): DeferralScheduleView {
  return {
    id: r.id,
    organizationId: r.organization_id,
    currency: r.currency,
    key: r.key,
    sourceType: r.source_type,
    sourceId: r.source_id,
    description: r.description,
    total: Money.fromMinorUnits(BigInt(r.total_minor), r.currency),
    serviceStart: r.service_start,
    serviceEnd: r.service_end,
    fromAccount: r.from_account,
    toAccount: r.to_account,
    partyId: r.party_id,
    finalPeriod: r.final_period,
    recognizeFrom: r.recognize_from,
    createdAt: toInstant(r.created_at)!,
    created,
  };
}

type ScheduleInsert = ReturnType<typeof scheduleRow>;

/** A schedule as the INSERT takes it, after the checks `createSchedule` makes. */
function scheduleRow(input: CreateScheduleInput) {
  if (!isUuid(input.organizationId)) throw new LedgerInputError('invalid_value', 'organizationId must be a uuid', 'organizationId');
  if (typeof input.key !== 'string' || !input.key.trim() || input.key.length > 300) {
    throw new LedgerInputError('invalid_value', 'key must be 1-300 characters', 'key');
  }
  if (!input.source || typeof input.source.type !== 'string' || !input.source.type || typeof input.source.id !== 'string' || !input.source.id) {
    throw new LedgerInputError('missing_field', 'source {type, id} is required', 'source');
  }
  if (!(input.total instanceof Money)) throw new LedgerInputError('invalid_type', 'total must be a Money', 'total');
  if (!input.total.isPositive()) throw new LedgerInputError('not_positive', 'total must be positive', 'total');
  const currency = getCurrency(input.total.currency.code).code;
  const fromAccount = input.fromAccount ?? ACCOUNTS.DEFERRED_REVENUE;
  for (const [field, code] of [
    ['fromAccount', fromAccount],
    ['toAccount', input.toAccount],
  ] as const) {
    const def = accountDefinition(code);
    if (!def) throw new LedgerInputError('unknown_account', `${field} ${JSON.stringify(code)} is not in the chart of accounts`, field);
    if (def.requiresParty && !input.partyId) throw new LedgerInputError('party_required', `${def.name} needs a partyId`, 'partyId');
  }
  if (fromAccount === input.toAccount) throw new LedgerInputError('invalid_value', 'fromAccount and toAccount must differ', 'toAccount');
  if (input.partyId != null && !isUuid(input.partyId)) throw new LedgerInputError('invalid_value', 'partyId must be a uuid', 'partyId');
  const serviceStart = toDate(input.serviceStart, 'serviceStart', { midnightOnly: true });
  const serviceEnd = toDate(input.serviceEnd, 'serviceEnd', { midnightOnly: true });
  const shares = recognitionShares(input.total, serviceStart, serviceEnd);
  const finalPeriod = [...shares].reverse().find((s) => !s.amount.isZero())!.period;
  return {
    id: randomUUID(),
    organization_id: input.organizationId.toLowerCase(),
    currency,
    key: input.key,
    source_type: input.source.type,
    source_id: input.source.id,
    description: (input.description ?? `Recognition of ${input.source.type} ${input.source.id}`).slice(0, 1000),
    total_minor: input.total.toMinorUnits().toString(),
    service_start: serviceStart,
    service_end: serviceEnd,
    from_account: fromAccount,
    to_account: input.toAccount,
    party_id: input.partyId ? input.partyId.toLowerCase() : null,
    final_period: finalPeriod,
    recognize_from: input.recognizeFrom ? toDate(input.recognizeFrom, 'recognizeFrom') : null,
  };
}

/** A schedule already stored under the key has the same terms (not its id, description or recognize_from). */
function sameTerms(
  a: ReturnType<typeof scheduleRow>,
  b: Pick<ScheduleRow, 'currency' | 'total_minor' | 'service_start' | 'service_end' | 'from_account' | 'to_account' | 'party_id' | 'source_type' | 'source_id'>,
): boolean {
  return (
    b.currency === a.currency &&
    BigInt(b.total_minor) === BigInt(a.total_minor) &&
    b.service_start === a.service_start &&
    b.service_end === a.service_end &&
    b.from_account === a.from_account &&
    b.to_account === a.to_account &&
    (b.party_id ?? null) === a.party_id &&
    b.source_type === a.source_type &&
    b.source_id === a.source_id
  );
}

/** The key of the entry recognizing `scheduleId`'s share of `period`. */
export const recognitionKey = (scheduleId: string, period: PeriodString) => `recognition:${scheduleId}:${period}`;

/** Deterministic BullMQ job id of a monthly recognition run. */
export const recognitionJobId = (organizationId: string, period: PeriodString) => `recognize:${organizationId}:${period}`;

const CHUNK = 500;

/**
 * Revenue recognition: deferral schedules (created with the invoice that bills a fee in advance)
 * and the monthly run that moves each month's share from Deferred revenue to revenue, dated the
 * month's last day, once per schedule and month (entry key `recognition:{schedule}:{YYYY-MM}`).
 */
@Injectable()
export class RevenueRecognitionService {
  private readonly logger = new Logger('RevenueRecognition');

  constructor(
    private readonly ledger: LedgerService,
    private readonly audit: AuditService,
    private readonly jobs: JobsService,
  ) {}

  /** Creates a schedule in the caller's transaction; the same key again returns the first (409 if it differs). */
  async createSchedule(em: EntityManager, input: CreateScheduleInput): Promise<DeferralScheduleView> {
    const [view] = await this.createSchedules(em, [input]);
    return view;
  }

  /**
   * `createSchedule` for many schedules: one INSERT … ON CONFLICT DO NOTHING for all of them, and
   * one read of the keys that existed (each must have the same terms, else 409: none is written).
   * In input order.
   */
  async createSchedules(em: EntityManager, inputs: readonly CreateScheduleInput[]): Promise<DeferralScheduleView[]> {
    if (!inputs.length) return [];
    const rows = inputs.map((input) => scheduleRow(input));
    const byKey = new Map<string, (typeof rows)[number]>();
    for (const r of rows) {
      const k = `${r.organization_id}\u0000${r.key}`;
      const first = byKey.get(k);
      if (first && !sameTerms(first, r)) throw new ConflictError('schedule_key_conflict', `deferral schedule ${JSON.stringify(r.key)} exists with different terms`, 'key');
      if (!first) byKey.set(k, r);
    }
    return inTransaction(em, (tx) => this.writeSchedules(tx, rows, [...byKey.values()]));
  }

  /** INSERT … ON CONFLICT DO NOTHING of `unique`, then the existing keys checked; answers `rows` in order. */
  private async writeSchedules(em: EntityManager, rows: ScheduleInsert[], unique: ScheduleInsert[]): Promise<DeferralScheduleView[]> {
    const inserted = await em.execute<ScheduleRow[]>(
      `insert into deferral_schedules (id, created_at, organization_id, currency, key, source_type, source_id, description, total_minor,
                                       service_start, service_end, from_account, to_account, party_id, final_period, recognize_from)
       select x.id, now(), x.organization_id, x.currency, x.key, x.source_type, x.source_id, x.description, x.total_minor,
              x.service_start, x.service_end, x.from_account, x.to_account, x.party_id, x.final_period, x.recognize_from
         from jsonb_to_recordset(?::jsonb) as x(id uuid, organization_id uuid, currency text, key text, source_type text, source_id text,
                                                description text, total_minor bigint, service_start date, service_end date, from_account text,
                                                to_account text, party_id uuid, final_period text, recognize_from date)
       on conflict (organization_id, key) do nothing
       returning ${SCHEDULE_COLUMNS}`,
      [jsonParam(unique)],
    );
    const views = new Map(inserted.map((r) => [`${r.organization_id}\u0000${r.key}`, toView(r, true)]));
    const missing = unique.filter((r) => !views.has(`${r.organization_id}\u0000${r.key}`));
    if (missing.length) {
      const priors = await em.execute<ScheduleRow[]>(
        `select ${SCHEDULE_COLUMNS} from deferral_schedules s
          where (s.organization_id, s.key) in (select x.organization_id, x.key from jsonb_to_recordset(?::jsonb) as x(organization_id uuid, key text))`,
        [jsonParam(missing.map((r) => ({ organization_id: r.organization_id, key: r.key })))],
      );
      const priorBy = new Map(priors.map((p) => [`${p.organization_id}\u0000${p.key}`, p]));
      for (const r of missing) {
        const prior = priorBy.get(`${r.organization_id}\u0000${r.key}`);
        if (!prior || !sameTerms(r, prior)) {
          throw new ConflictError('schedule_key_conflict', `deferral schedule ${JSON.stringify(r.key)} exists with different terms`, 'key');
        }
        views.set(`${r.organization_id}\u0000${r.key}`, toView(prior, false));
      }
    }
    return rows.map((r) => views.get(`${r.organization_id}\u0000${r.key}`)!);
  }

  async getSchedule(em: EntityManager, organizationId: string, id: string): Promise<ScheduleProgress> {
    if (!isUuid(id)) throw new NotFoundError('deferral schedule', String(id));
    const [row] = await em.execute<ScheduleRow[]>(`select ${SCHEDULE_COLUMNS} from deferral_schedules where organization_id = ? and id = ?`, [
      organizationId,
      id,
    ]);
    if (!row) throw new NotFoundError('deferral schedule', id);
    const view = toView(row, false);
    const posted = await em.execute<{ key: string; id: string; entry_date: string }[]>(
      `select key, id, entry_date::text as entry_date from journal_entries
        where organization_id = ? and source_type = 'deferral_schedule' and source_id = ? and key like ?`,
      [organizationId, id, `recognition:${id}:%`],
    );
    const byKey = new Map(posted.map((p) => [p.key, p]));
    const months = recognitionShares(view.total, view.serviceStart, view.serviceEnd).map((s) => {
      const e = byKey.get(recognitionKey(id, s.period));
      return { period: s.period, amount: s.amount, entryId: e?.id ?? null, entryDate: e?.entry_date ?? null };
    });
    const recognized = Money.sum(
      months.filter((m) => m.entryId).map((m) => m.amount),
      view.currency,
    );
    return { ...view, months, recognized, remaining: view.total.minus(recognized) };
  }

  /** Schedules, newest first, cursor-paginated over (created_at, id) like every list of the API. */
  async listSchedules(
    em: EntityManager,
    organizationId: string,
    filter: { sourceType?: string; sourceId?: string; limit?: number; cursor?: string } = {},
  ): Promise<{ data: DeferralScheduleView[]; nextCursor: string | null }> {
    const limit = filter.limit ?? 100;
    const cursor = decodeCursor(filter.cursor);
    const rows = await em.execute<ScheduleRow[]>(
      `select ${SCHEDULE_COLUMNS} from deferral_schedules
        where organization_id = ? and (?::text is null or source_type = ?) and (?::text is null or source_id = ?)
          and (?::timestamptz is null or created_at < ?::timestamptz or (created_at = ?::timestamptz and id < ?::uuid))
        order by created_at desc, id desc limit ?`,
      [
        organizationId,
        filter.sourceType ?? null,
        filter.sourceType ?? null,
        filter.sourceId ?? null,
        filter.sourceId ?? null,
        cursor?.t ?? null,
        cursor?.t ?? null,
        cursor?.t ?? null,
        cursor?.id ?? null,
        limit + 1,
      ],
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { data: page.map((r) => toView(r, false)), nextCursor: rows.length > limit && last ? rawCursor(last.created_at, last.id) : null };
  }

  /**
   * Recognizes every schedule of the organization through `period`: for each schedule that started
   * by the month's end and is not fully recognized, posts each month's share up to `period` that
   * has no entry yet (catching up months a late schedule missed), dated that month's last day (a
   * closed month's share lands in the first open month with corrects_period). Idempotent: a second
   * run finds every key posted and writes nothing. Runs in the caller's transaction when there is
   * one, else in transactions of 500 schedules.
   */
  async recognize(em: EntityManager, organizationId: string, period: string): Promise<RecognitionRunResult> {
    const p = assertPeriod(period);
    if (!isUuid(organizationId)) throw new NotFoundError('organization', String(organizationId));
    const result: RecognitionRunResult = { organizationId, period: p, schedules: 0, entriesPosted: 0, recognized: {} };
    const periodEndExclusive = firstDay(addPeriods(p, 1));
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const rows = await em.execute<ScheduleRow[]>(
        `select ${SCHEDULE_COLUMNS} from deferral_schedules s
          where s.organization_id = ? and s.service_start < ?::date and (s.recognize_from is null or s.recognize_from < ?::date) and s.id > ?
            and not exists (select 1 from journal_entries e
                             where e.organization_id = s.organization_id and e.key = 'recognition:' || s.id || ':' || s.final_period)
          order by s.id limit ${CHUNK}`,
        [organizationId, periodEndExclusive, periodEndExclusive, after],
      );
      if (rows.length === 0) break;
      after = rows[rows.length - 1].id;
      result.schedules += rows.length;
      await inTransaction(em, async (tx) => {
        const planned: { input: PostEntryInput; share: RecognitionShare; currency: string }[] = [];
        for (const r of rows) {
          const s = toView(r, false);
          for (const share of recognitionShares(s.total, s.serviceStart, s.serviceEnd)) {
            if (periodIndex(share.period) > periodIndex(p) || share.amount.isZero()) continue;
            planned.push({ input: this.recognitionEntry(s, share), share, currency: s.currency });
          }
        }
        if (!planned.length) return;
        const existing = new Set(
          (
            await tx.execute<{ key: string }[]>(
              `select key from journal_entries where organization_id = ? and key in (select jsonb_array_elements_text(?::jsonb))`,
              [organizationId, jsonParam(planned.map((x) => x.input.key))],
            )
          ).map((r) => r.key),
        );
        const todo = planned.filter((x) => !existing.has(x.input.key));
        if (!todo.length) return;
        const posted = await this.ledger.postMany(
          tx,
          todo.map((x) => x.input),
        );
        posted.forEach((e, i) => {
          if (!e.created) return;
          result.entriesPosted++;
          const c = todo[i].currency;
          result.recognized[c] = (result.recognized[c] ?? Money.zero(c)).plus(todo[i].share.amount);
        });
        if (posted.some((e) => e.created)) {
          this.audit.record(tx, {
            organizationId,
            action: 'ledger.revenue_recognized',
            resourceType: 'recognition_run',
            resourceId: p,
            data: { period: p, entries: posted.filter((e) => e.created).length },
          });
          await tx.flush();
        }
      });
    }
    if (result.entriesPosted) this.logger.log({ organizationId, period: p, entries: result.entriesPosted }, 'revenue recognized');
    return result;
  }

  /** Enqueues the monthly run (job `ledger.recognize-revenue`, id `recognize:{org}:{period}`). */
  async enqueue(organizationId: string, period: string) {
    const p = assertPeriod(period);
    return this.jobs.enqueue('ledger.recognize-revenue', { organization_id: organizationId, period: p }, { jobId: recognitionJobId(organizationId, p) });
  }

  /** Organizations with a schedule in service during `period` (whom the monthly fan-out enqueues). */
  async organizationsToRecognize(em: EntityManager, period: string): Promise<string[]> {
    const p = assertPeriod(period);
    const rows = await em.execute<{ organization_id: string }[]>(
      `select distinct organization_id from deferral_schedules where service_start < ?::date and service_end > ?::date`,
      [firstDay(addPeriods(p, 1)), firstDay(p)],
    );
    return rows.map((r) => r.organization_id);
  }

  private recognitionEntry(s: DeferralScheduleView, share: RecognitionShare): PostEntryInput {
    const lines = [
      { account_code: s.fromAccount, party_id: s.partyId, debit: share.amount },
      { account_code: s.toAccount, party_id: s.partyId, credit: share.amount },
    ];
    return {
      organizationId: s.organizationId,
      currency: s.currency,
      // Never before the amount was booked: a month that ended earlier catches up on that day.
      date: s.recognizeFrom && s.recognizeFrom > lastDay(share.period) ? s.recognizeFrom : lastDay(share.period),
      key: recognitionKey(s.id, share.period),
      source: { type: 'deferral_schedule', id: s.id },
      description: `${s.description} — ${share.period}`.slice(0, 1000),
      lines,
    };
  }
}

