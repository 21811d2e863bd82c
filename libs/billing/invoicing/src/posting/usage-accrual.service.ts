import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Money } from '@closebook/money';
import { lockInOrder } from '@closebook/platform';
import { assertPeriod, lastDay, LedgerService } from '@closebook/ledger';
import { RollupsService } from '@closebook/metering';
import { ratePeriodInvoice } from '@closebook/rating';
import { BillingPeriod, Subscription } from '@closebook/subscriptions';
import { Invoice, type StoredRatingInput } from '../entities/invoice.entity';
import { PeriodRatingService, usageOf } from '../rating/period-rating.service';

/** Serializes a period's accrual with its invoice's posting (both take it), so neither misses the other. */
export const usageAccrualLock = (billingPeriodId: string) => `usage_accrual:${billingPeriodId}`;
/** The accrual of one billing period's usage in one month (the ledger prefixes it with `accrual:`). */
export const usageAccrualKey = (billingPeriodId: string, month: string) => `usage:${billingPeriodId}:${month}`;

interface Candidate {
  billing_period_id: string;
  subscription_id: string;
  customer_id: string;
  period_start: Date;
  period_end: Date;
  invoice_id: string | null;
  invoice_status: string | null;
}

export interface UsageAccrualResult {
  month: string;
  /** Billing periods with usage in the month not billed by its end. */
  periods: number;
  accrued: number;
  /** Accruals reversed at once because the invoice had already posted. */
  reversed: number;
  amounts: Record<string, string>;
}

const USAGE_LINE_TYPES = new Set(['usage_included', 'usage_overage']);

/**
 * Month-end accrual of unbilled usage (SPEC §5): usage is revenue of the month it happens in, and a
 * period invoice is dated on its period's last day (accounting-dates.ts). A period inside month M is
 * therefore invoiced in M; only a period crossing M's end (an anchor other than the 1st) has usage in
 * M that M's books would miss. For each such period with usage, M's share is accrued (Dr Unbilled
 * receivables / Cr Revenue — usage, dated M's last day) and reversed on the invoice's date.
 *
 * M's share = V(min(M end, period end)) − V(max(M start, period start)), where V(t) is the usage
 * lines' amount of the period rated (same pure function, same rating input) with the events before t.
 * Differences of cumulative values keep allowances and tiers right across months: the allowance is
 * drawn first by the month that used it. A share that comes out negative (a `latest` meter that went
 * down) accrues nothing.
 */
@Injectable()
export class UsageAccrualService {
  constructor(
    private readonly ledger: LedgerService,
    private readonly rating: PeriodRatingService,
    private readonly rollups: RollupsService,
  ) {}

  async accrue(em: EntityManager, organizationId: string, month: string): Promise<UsageAccrualResult> {
    assertPeriod(month, 'period');
    const monthStart = new Date(`${month}-01T00:00:00.000Z`);
    const monthEnd = new Date(Date.UTC(monthStart.getUTCFullYear(), monthStart.getUTCMonth() + 1, 1));
    const candidates = await em.execute<Candidate[]>(
      `select bp.id as billing_period_id, bp.subscription_id, s.customer_id, bp.period_start, bp.period_end,
              i.id as invoice_id, i.status as invoice_status
       from billing_periods bp
       join subscriptions s on s.id = bp.subscription_id
       left join invoices i on i.billing_period_id = bp.id and i.kind = 'period'
       where bp.organization_id = ? and bp.period_start < ? and bp.period_end > ? and s.started_at < ?
         and (i.id is null or i.status <> 'void')
         and (exists (select 1 from usage_rollups u where u.subscription_id = bp.subscription_id
                        and u.period_start = bp.period_start and u.event_count > 0)
              or exists (select 1 from usage_rollup_dirty d where d.subscription_id = bp.subscription_id
                           and d.period_start = bp.period_start))
       order by bp.subscription_id, bp.period_start`,
      // Periods crossing the month's end: their invoice is dated on their last day, after the month.
      [organizationId, monthEnd.toISOString(), monthEnd.toISOString(), monthEnd.toISOString()],
    );
    const result: UsageAccrualResult = { month, periods: candidates.length, accrued: 0, reversed: 0, amounts: {} };
    const date = lastDay(month);
    const add = (m: Money) => {
      const cur = m.currency.code;
      result.amounts[cur] = Money.parse(result.amounts[cur] ?? '0', cur).plus(m).format();
    };
    for (const c of candidates) {
      // A fresh context per period: the invoices loaded (with their large rating input) do not pile up in one identity map.
      await em.fork().transactional(async (tx) => {
        await lockInOrder(tx, [usageAccrualLock(c.billing_period_id)]);
        const key = usageAccrualKey(c.billing_period_id, month);
        // A month's accrual is its month-end estimate, made once: usage arriving later is late usage
        // (billed or waived through its exception), never a second accrual under the same key.
        const [done] = await tx.execute<{ id: string }[]>('select id from journal_entries where organization_id = ? and key = ?', [organizationId, `accrual:${key}`]);
        if (done) return;
        const invoice = c.invoice_id ? await tx.findOne(Invoice, { id: c.invoice_id }, { refresh: true }) : null;
        const input = invoice?.ratingInput ?? (await this.ratingInput(tx, c));
        if (!input) return;
        const cut = new Date(Math.min(monthEnd.getTime(), new Date(c.period_end).getTime()));
        const from = new Date(Math.max(monthStart.getTime(), new Date(c.period_start).getTime()));
        const upToCut = await this.valueAt(tx, c, input, cut);
        const before = from.getTime() > new Date(c.period_start).getTime() ? await this.valueAt(tx, c, input, from) : Money.zero(upToCut.currency);
        const share = upToCut.minus(before);
        if (!share.isPositive()) return;
        const posted = await this.ledger.accrue(tx, {
          organizationId,
          key,
          date,
          amount: share,
          party: c.customer_id,
          source: { type: 'billing_period', id: c.billing_period_id },
          description: `Unbilled usage of ${month} (billing period ${new Date(c.period_start).toISOString().slice(0, 10)} → ${new Date(c.period_end).toISOString().slice(0, 10)})`,
        });
        // Already accrued by an earlier run (the key): counted once, reversed once.
        if (!posted || !posted.created) return;
        result.accrued++;
        add(share);
        // The invoice posted already (its hook found nothing to reverse then): reverse now, on its accounting date.
        if (invoice && invoice.status !== 'draft') {
          await this.ledger.reverseAccrual(tx, { organizationId, key, date: invoice.issueDate, reason: `usage invoiced on ${invoice.number ?? invoice.id}` });
          result.reversed++;
        }
      });
    }
    return result;
  }

  /** The rating input of a period not rated yet: what the period-end rating would use now. */
  private async ratingInput(em: EntityManager, c: Candidate): Promise<StoredRatingInput | null> {
    const sub = await em.findOne(Subscription, { id: c.subscription_id });
    const p = await em.findOne(BillingPeriod, { id: c.billing_period_id });
    if (!sub || !p) return null;
    return (await this.rating.build(em, sub, p, { rollups: 'stored' })).stored;
  }

  /** V(t): the usage lines' amount of the period rated with the events before `t`. */
  private async valueAt(em: EntityManager, c: Candidate, input: StoredRatingInput, t: Date): Promise<Money> {
    const rollups = await this.rollups.computeUntil(em, c.subscription_id, c.period_start, t);
    // Only the usage matters here: on-demand charges, adjustments and credits are billed, not accrued.
    const rated = ratePeriodInvoice({ ...input, on_demand: [], adjustments: [], credits: [], deferred_lines: [], usage: usageOf(rollups) });
    const lines = rated.lines.filter((l) => USAGE_LINE_TYPES.has(l.type));
    return Money.sum(lines.map((l) => Money.parse(l.amount, rated.currency)), rated.currency);
  }
}
