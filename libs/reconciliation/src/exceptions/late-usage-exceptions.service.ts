import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ValidationError } from '@closebook/platform';
import { ExceptionsService, type RecordManyItem } from './exceptions.service';
import { PERIOD_RE } from './model';

/** The check key (and item key = late_usage id) of late-usage exceptions. */
export const LATE_USAGE_CHECK = 'late_usage';

interface LateRow {
  id: string;
  period: string;
  subscription_id: string;
  customer_id: string;
  invoice_id: string;
  product_key: string;
  price_key: string;
  billed_quantity: string;
  previous_quantity: string;
  quantity: string;
  quantity_delta: string;
  amount: string;
  currency: string;
  period_start: Date;
  period_end: Date;
  error: { code: string; message: string } | null;
}

/**
 * Turns open late usage (libs/billing/invoicing, `late_usage`) into `late_usage` exceptions: check
 * `late_usage`, item = the late usage id, period = the month its service period starts (UTC).
 * Resolving one as `corrected` bills it (an adjustment on the next period invoice); waiving it, or
 * accepting it, waives it. Late usage billed or waived some other way resolves its exception (`auto`).
 */
@Injectable()
export class LateUsageExceptions {
  constructor(private readonly exceptions: ExceptionsService) {}

  async sync(em: EntityManager, organizationId: string, period?: string): Promise<{ recorded: number; created: number; resolved: number; periods: string[] }> {
    if (period !== undefined && !PERIOD_RE.test(period)) throw new ValidationError('invalid_period', 'period must be a month as YYYY-MM', 'period');
    const month = `to_char(l.period_start at time zone 'UTC', 'YYYY-MM')`;
    const rows = await em.execute<LateRow[]>(
      `select l.id, ${month} as period, l.subscription_id, l.customer_id, l.invoice_id, l.product_key, l.price_key,
              l.billed_quantity::text, l.previous_quantity::text, l.quantity::text, l.quantity_delta::text, l.amount::text, l.currency,
              l.period_start, l.period_end, l.steps->'error' as error
       from late_usage l
       where l.organization_id = ? and l.status = 'open' and (?::text is null or ${month} = ?::text)
       order by l.period_start, l.created_at, l.id`,
      [organizationId, period ?? null, period ?? null],
    );
    const byPeriod = new Map<string, RecordManyItem[]>();
    for (const r of rows) {
      const item: RecordManyItem = {
        itemKey: r.id,
        type: 'late_usage',
        title: `Late usage of ${r.product_key}${r.price_key ? ` (${r.price_key})` : ''}: ${r.quantity_delta} after the invoice was finalized, ${r.amount} ${r.currency} unbilled`,
        currency: r.currency,
        expected: r.amount,
        actual: '0',
        variance: r.amount,
        details: {
          late_usage_id: r.id,
          product_key: r.product_key,
          price_key: r.price_key || null,
          billed_quantity: r.billed_quantity,
          previous_quantity: r.previous_quantity,
          quantity: r.quantity,
          quantity_delta: r.quantity_delta,
          period_start: new Date(r.period_start).toISOString(),
          period_end: new Date(r.period_end).toISOString(),
          ...(r.error ? { rating_error: r.error } : {}),
        },
        refs: { invoice_id: r.invoice_id, subscription_id: r.subscription_id, customer_id: r.customer_id },
      };
      const list = byPeriod.get(r.period);
      if (list) list.push(item);
      else byPeriod.set(r.period, [item]);
    }
    let created = 0;
    // Each late usage needs its own decision (bill or waive): never summarized.
    for (const [p, items] of byPeriod) {
      const res = await this.exceptions.recordMany(em, items, { organizationId, checkKey: LATE_USAGE_CHECK, period: p, cap: Number.MAX_SAFE_INTEGER });
      created += res.created;
    }
    // Late usage no longer open (billed or waived elsewhere) resolves its exception.
    const settled = await em.execute<{ period: string; item_key: string }[]>(
      `select e.period, e.item_key from exceptions e join late_usage l on l.id::text = e.item_key and l.organization_id = e.organization_id
       where e.organization_id = ? and e.check_key = ? and e.status in ('open', 'assigned') and l.status <> 'open' and (?::text is null or e.period = ?::text)`,
      [organizationId, LATE_USAGE_CHECK, period ?? null, period ?? null],
    );
    let resolved = 0;
    const settledBy = new Map<string, string[]>();
    for (const s of settled) settledBy.set(s.period, [...(settledBy.get(s.period) ?? []), s.item_key]);
    for (const [p, keys] of settledBy) {
      resolved += (await this.exceptions.autoResolve(em, { organizationId, checkKey: LATE_USAGE_CHECK, period: p, passingItemKeys: keys })).resolved;
    }
    return { recorded: rows.length, created, resolved, periods: [...byPeriod.keys()] };
  }
}
