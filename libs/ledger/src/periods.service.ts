import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { AuditService, UnprocessableError } from '@closebook/platform';
import type { PeriodStatus } from './entities/accounting-period.entity';
import { addPeriods, assertPeriod, firstDay, lastDay, periodOf, periodsBetween, todayUtc, type PeriodString } from './dates';
import { LedgerInputError } from './errors';
import { inTransaction, toInstant } from './sql';

export interface PeriodState {
  period: PeriodString;
  status: PeriodStatus;
  closingStartedAt: Date | null;
  closedAt: Date | null;
  reopenedAt: Date | null;
  reopenReason: string | null;
}

export interface PeriodSummary extends PeriodState {
  /** Entries dated in the month. */
  entryCount: number;
  /** Entries dated in the month that correct an earlier, closed month. */
  correctionCount: number;
}

interface PeriodRow {
  period: string;
  status: PeriodStatus;
  closing_started_at: string | null;
  closed_at: string | null;
  reopened_at: string | null;
  reopen_reason: string | null;
}

const PERIOD_COLUMNS = `period, status, to_json(closing_started_at)#>>'{}' as closing_started_at, to_json(closed_at)#>>'{}' as closed_at,
  to_json(reopened_at)#>>'{}' as reopened_at, reopen_reason`;

function toState(period: PeriodString, row: PeriodRow | undefined): PeriodState {
  return {
    period,
    status: row?.status ?? 'open',
    closingStartedAt: toInstant(row?.closing_started_at),
    closedAt: toInstant(row?.closed_at),
    reopenedAt: toInstant(row?.reopened_at),
    reopenReason: row?.reopen_reason ?? null,
  };
}

/**
 * Accounting periods: one per month per organization, `open → closing → closed` (and, as an
 * audited exception, `closed → open` again). A month with no row is open. Closing is what the close
 * gate calls; the database refuses any entry dated in a closed month.
 */
@Injectable()
export class LedgerPeriodsService {
  constructor(private readonly audit: AuditService) {}

  async status(em: EntityManager, organizationId: string, period: string): Promise<PeriodState> {
    const p = assertPeriod(period);
    const [row] = await em.execute<PeriodRow[]>(`select ${PERIOD_COLUMNS} from accounting_periods where organization_id = ? and period = ?`, [
      organizationId,
      p,
    ]);
    return toState(p, row);
  }

  /**
   * Every month from the first with an entry or a state (or the current month) to the later of the
   * current month and the last such month, newest first, with its status and entry counts.
   */
  async list(em: EntityManager, organizationId: string, now: Date = new Date()): Promise<PeriodSummary[]> {
    const rows = await em.execute<PeriodRow[]>(`select ${PERIOD_COLUMNS} from accounting_periods where organization_id = ?`, [organizationId]);
    const counts = await em.execute<{ period: string; entries: string; corrections: string }[]>(
      `select to_char(entry_date, 'YYYY-MM') as period, count(*)::text as entries, count(corrects_period)::text as corrections
         from journal_entries where organization_id = ? group by 1`,
      [organizationId],
    );
    const current = periodOf(todayUtc(now));
    const all = [...rows.map((r) => r.period), ...counts.map((c) => c.period), current].sort();
    const byPeriod = new Map(rows.map((r) => [r.period, r]));
    const countBy = new Map(counts.map((c) => [c.period, c]));
    return periodsBetween(all[0], all[all.length - 1])
      .reverse()
      .map((p) => ({
        ...toState(p, byPeriod.get(p)),
        entryCount: Number(countBy.get(p)?.entries ?? 0),
        correctionCount: Number(countBy.get(p)?.corrections ?? 0),
      }));
  }

  /**
   * `open → closing`: the month is being reconciled. Entries may still be dated in it (the close
   * run's corrections are), and the close gate compares what its checks saw. Idempotent when the
   * month is already closing; a closed month is a 422 (reopen it first).
   */
  async startClosing(em: EntityManager, organizationId: string, period: string): Promise<PeriodState> {
    const p = assertPeriod(period);
    return inTransaction(em, async (tx) => {
      const current = await this.lockRow(tx, organizationId, p);
      if (current.status === 'closing') return current;
      if (current.status === 'closed') throw new UnprocessableError('period_closed', `${p} is closed`, 'period');
      const next = await this.update(tx, organizationId, p, `status = 'closing', closing_started_at = now()`);
      this.record(tx, organizationId, p, 'ledger.period.closing_started', { from: current.status });
      await tx.flush();
      return next;
    });
  }

  /**
   * `closing → closed`: locks the month. From then on nothing dated in it can be written (the
   * database refuses it) and later postings for it land in the first open month with
   * `corrects_period`. Months close in order (an earlier month with entries must be closed first)
   * and only after they end. Idempotent when already closed.
   */
  async close(em: EntityManager, organizationId: string, period: string, now: Date = new Date()): Promise<PeriodState> {
    const p = assertPeriod(period);
    return inTransaction(em, async (tx) => {
      const current = await this.lockRow(tx, organizationId, p);
      if (current.status === 'closed') return current;
      if (current.status !== 'closing') {
        throw new UnprocessableError('period_not_closing', `${p} is ${current.status}: start closing it before closing it`, 'period');
      }
      if (lastDay(p) >= todayUtc(now)) {
        throw new UnprocessableError('period_not_ended', `${p} has not ended yet; it can close from ${firstDay(addPeriods(p, 1))}`, 'period');
      }
      const earlier = await tx.execute<{ period: string }[]>(
        `select distinct to_char(e.entry_date, 'YYYY-MM') as period
           from journal_entries e
          where e.organization_id = ? and e.entry_date < ?::date
            and not exists (select 1 from accounting_periods p
                             where p.organization_id = e.organization_id and p.period = to_char(e.entry_date, 'YYYY-MM') and p.status = 'closed')
          order by 1 limit 12`,
        [organizationId, firstDay(p)],
      );
      if (earlier.length) {
        throw new UnprocessableError('earlier_period_open', `close ${earlier.map((r) => r.period).join(', ')} before ${p}`, 'period', {
          open_periods: earlier.map((r) => r.period),
        });
      }
      // The trigger on accounting_periods takes the month's exclusive lock: in-flight postings
      // dated in it commit first, later ones see it closed.
      const next = await this.update(tx, organizationId, p, `status = 'closed', closed_at = now()`);
      this.record(tx, organizationId, p, 'ledger.period.closed', {});
      await tx.flush();
      return next;
    });
  }

  /**
   * `closed → open`, an audited exception with a reason: only the latest closed month can reopen
   * (reopen later months first). Its corrections posted meanwhile stay where they are.
   */
  async reopen(em: EntityManager, organizationId: string, period: string, reason: string): Promise<PeriodState> {
    const p = assertPeriod(period);
    const why = typeof reason === 'string' ? reason.trim() : '';
    if (!why) throw new LedgerInputError('missing_field', 'reopening a closed month needs a reason', 'reason');
    if (why.length > 1000) throw new LedgerInputError('invalid_value', 'reason must be at most 1000 characters', 'reason');
    return inTransaction(em, async (tx) => {
      const current = await this.lockRow(tx, organizationId, p);
      if (current.status !== 'closed') throw new UnprocessableError('period_not_closed', `${p} is ${current.status}, not closed`, 'period');
      const later = await tx.execute<{ period: string }[]>(
        `select period from accounting_periods where organization_id = ? and period > ? and status = 'closed' order by period`,
        [organizationId, p],
      );
      if (later.length) {
        throw new UnprocessableError('later_period_closed', `reopen ${later.map((r) => r.period).join(', ')} first`, 'period', {
          closed_periods: later.map((r) => r.period),
        });
      }
      const next = await this.update(tx, organizationId, p, `status = 'open', reopened_at = now(), reopen_reason = ?`, [why]);
      this.record(tx, organizationId, p, 'ledger.period.reopened', { reason: why });
      await tx.flush();
      return next;
    });
  }

  /** The first month at or after `period` that is not closed. */
  async firstOpenPeriod(em: EntityManager, organizationId: string, period: string): Promise<PeriodString> {
    let p = assertPeriod(period);
    const closed = new Set(
      (
        await em.execute<{ period: string }[]>(`select period from accounting_periods where organization_id = ? and status = 'closed' and period >= ?`, [
          organizationId,
          p,
        ])
      ).map((r) => r.period),
    );
    while (closed.has(p)) p = addPeriods(p, 1);
    return p;
  }

  /** The month's row, created open when missing, locked FOR UPDATE for the transition. */
  private async lockRow(tx: EntityManager, organizationId: string, p: PeriodString): Promise<PeriodState> {
    await tx.execute(
      `insert into accounting_periods (id, created_at, updated_at, organization_id, period, status)
       values (?, now(), now(), ?, ?, 'open') on conflict (organization_id, period) do nothing`,
      [randomUUID(), organizationId, p],
    );
    const [row] = await tx.execute<PeriodRow[]>(`select ${PERIOD_COLUMNS} from accounting_periods where organization_id = ? and period = ? for update`, [
      organizationId,
      p,
    ]);
    return toState(p, row);
  }

  private async update(tx: EntityManager, organizationId: string, p: PeriodString, set: string, params: unknown[] = []): Promise<PeriodState> {
    const [row] = await tx.execute<PeriodRow[]>(
      `update accounting_periods set ${set}, updated_at = now() where organization_id = ? and period = ? returning ${PERIOD_COLUMNS}`,
      [...params, organizationId, p],
    );
    return toState(p, row);
  }

  private record(tx: EntityManager, organizationId: string, p: PeriodString, action: string, data: Record<string, unknown>) {
    this.audit.record(tx, { organizationId, action, resourceType: 'accounting_period', resourceId: p, data: { period: p, ...data } });
  }
}
