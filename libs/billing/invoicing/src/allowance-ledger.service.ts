import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec, Decimal, formatDecimal } from '@closebook/money';
import { SubscriptionsService } from '@closebook/subscriptions';
import { AllowanceDrawdownRecord, AllowanceExpiryRecord, AllowanceGrantRecord } from './entities/allowance-ledger.entity';
import { Invoice } from './entities/invoice.entity';

export interface BucketReplay {
  grant: AllowanceGrantRecord;
  invoice_status: string;
  drawdowns: AllowanceDrawdownRecord[];
  expiry: AllowanceExpiryRecord | null;
  drawn: string;
  /** quantity − drawn − (carried + expired when lapsed): what is still available (0 once lapsed). */
  remaining: string;
  lapsed: boolean;
  /** True when the bucket replays: quantity = drawn + carried + expired once lapsed, drawn ≤ quantity always. */
  balanced: boolean;
}

/**
 * The allowance ledger of a subscription (SPEC §2): every grant with its drawdowns and its expiry,
 * replayed bucket by bucket. Draft invoices' rows are included (marked by `invoice_status`): they
 * are replaced if the draft is re-rated.
 */
@Injectable()
export class AllowanceLedgerService {
  constructor(private readonly subscriptions: SubscriptionsService) {}

  async replay(em: EntityManager, organizationId: string, subscriptionId: string, q: { product?: string; price_key?: string } = {}): Promise<BucketReplay[]> {
    const sub = await this.subscriptions.byId(em, organizationId, subscriptionId);
    const where: Record<string, unknown> = { subscriptionId: sub.id };
    if (q.product) where.productKey = q.product;
    if (q.price_key !== undefined) where.priceKey = q.price_key === '' ? null : q.price_key;
    const grants = await em.find(AllowanceGrantRecord, where, { orderBy: { grantedInPeriod: 'asc', kind: 'asc', grantId: 'asc' } });
    if (!grants.length) return [];
    const ids = grants.map((g) => g.grantId);
    const [draws, expiries, invoices] = await Promise.all([
      em.find(AllowanceDrawdownRecord, { subscriptionId: sub.id, grantId: { $in: ids } }, { orderBy: { periodStart: 'asc' } }),
      em.find(AllowanceExpiryRecord, { subscriptionId: sub.id, grantId: { $in: ids } }),
      em.find(Invoice, { id: { $in: [...new Set(grants.map((g) => g.invoiceId))] } }, { fields: ['id', 'status'] }),
    ]);
    const status = new Map(invoices.map((i) => [i.id, i.status]));
    return grants.map((g) => {
      const ds = draws.filter((d) => d.grantId === g.grantId);
      const expiry = expiries.find((e) => e.grantId === g.grantId) ?? null;
      const drawn = ds.reduce((a: Decimal, d) => a.plus(dec(d.drawn)), dec(0));
      const q = dec(g.quantity);
      const lapsedUnits = expiry ? dec(expiry.carried).plus(dec(expiry.expired)) : dec(0);
      const remaining = q.minus(drawn).minus(lapsedUnits);
      return {
        grant: g,
        invoice_status: status.get(g.invoiceId) ?? 'unknown',
        drawdowns: ds,
        expiry,
        drawn: formatDecimal(drawn),
        remaining: formatDecimal(remaining),
        lapsed: !!expiry,
        balanced: !drawn.gt(q) && (!expiry || remaining.isZero()),
      };
    });
  }
}
