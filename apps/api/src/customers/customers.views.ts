import { z } from 'zod';
import { isoTimestamp, paginationQuery } from '@closebook/platform';
import { periodContaining } from '@closebook/rating';
import {
  SUBSCRIPTION_CHANGE_KINDS,
  SUBSCRIPTION_STATUSES,
  type Customer,
  type Subscription,
  type SubscriptionChange,
  type SubscriptionDetail,
} from '@closebook/subscriptions';
import type { Plan, PlanVersion } from '@closebook/catalog';

const DAY_MS = 86_400_000;
const externalId = z.string().min(1).max(200);

// ---------------------------------------------------------------------------------------------
// Customers

export const createCustomerBody = z
  .object({
    external_id: externalId.meta({ description: "The platform's own id for the customer (what usage events carry as customer_id)" }),
    name: z.string().trim().min(1).max(200),
    email: z.email().max(320).optional(),
    currency: z.string().meta({ description: 'ISO 4217 code; subscriptions must be in it' }),
    tax_rate: z.string().optional().meta({ description: 'A fraction 0..1 as a decimal string ("0.2" = 20%); default "0"' }),
  })
  .strict();

export const listQuery = z.object(paginationQuery).strict();

export const customerView = z.object({
  id: z.string(),
  external_id: z.string(),
  name: z.string(),
  email: z.string().nullable(),
  currency: z.string(),
  tax_rate: z.string(),
  created_at: z.string(),
});

export const presentCustomer = (c: Customer): z.infer<typeof customerView> => ({
  id: c.id,
  external_id: c.externalId,
  name: c.name,
  email: c.email ?? null,
  currency: c.currency,
  tax_rate: c.taxRate,
  created_at: c.createdAt.toISOString(),
});

// ---------------------------------------------------------------------------------------------
// Subscriptions

const count = (max: number) => z.number().int().min(0).max(max);

export const createSubscriptionBody = z
  .object({
    plan_key: z.string().min(1).max(100),
    plan_version: z.number().int().min(1).optional().meta({ description: 'Default: the latest published version' }),
    seats: count(1_000_000).optional().meta({ description: 'Default 1' }),
    addons: z
      .array(z.object({ product_key: z.string().min(1).max(100), quantity: z.number().int().min(1).max(1_000_000).optional() }).strict())
      .max(100)
      .optional(),
    billing_anchor: z.number().int().min(1).max(31).optional().meta({ description: 'Day of the month (UTC) periods start on; default 1' }),
    started_at: isoTimestamp().optional().meta({ description: 'Default now' }),
  })
  .strict();

export const seatsBody = z
  .object({ seats: count(1_000_000), effective_at: isoTimestamp().optional().meta({ description: 'Default now' }) })
  .strict();

export const addonBody = z
  .object({
    product_key: z.string().min(1).max(100),
    quantity: count(1_000_000).meta({ description: '0 removes the add-on' }),
    effective_at: isoTimestamp().optional().meta({ description: 'Default now' }),
  })
  .strict();

const planRef = z.object({ key: z.string(), name: z.string(), version: z.number(), plan_version_id: z.string(), interval: z.string() });
const periodView = z.object({ id: z.string(), seq: z.number(), period_start: z.string(), period_end: z.string(), days: z.number(), prorated: z.boolean() });
const addonView = z.object({ product_key: z.string(), quantity: z.number(), effective_from: z.string(), effective_to: z.string().nullable() });
const changeView = z.object({
  id: z.string(),
  kind: z.enum(SUBSCRIPTION_CHANGE_KINDS),
  effective_at: z.string(),
  data: z.record(z.string(), z.unknown()),
  status: z.enum(['applied', 'scheduled', 'canceled']),
  applied_at: z.string().nullable(),
  canceled_at: z.string().nullable(),
  created_at: z.string(),
});

export const subscriptionSummaryView = z.object({
  id: z.string(),
  customer_id: z.string(),
  status: z.enum(SUBSCRIPTION_STATUSES),
  plan: planRef,
  currency: z.string(),
  seats: z.number(),
  billing_anchor: z.number(),
  started_at: z.string(),
  ends_at: z.string().nullable(),
  created_at: z.string(),
});

export const subscriptionView = subscriptionSummaryView.extend({
  customer_external_id: z.string(),
  as_of: z.string(),
  addons: z.array(addonView).meta({ description: 'Add-ons in force at as_of' }),
  addon_schedule: z.array(addonView).meta({ description: 'Every add-on range: past, current and scheduled' }),
  current_period: periodView.nullable(),
  periods: z.array(periodView),
  changes: z.array(changeView),
  scheduled_changes: z.array(changeView),
});

export const changeResultView = z.object({ change: changeView, subscription: subscriptionView });

const iso = (d: Date) => d.toISOString();
const isoOrNull = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function presentSummary(s: Subscription, plan: Plan, version: PlanVersion, seats = s.seats): z.infer<typeof subscriptionSummaryView> {
  return {
    id: s.id,
    customer_id: s.customerId,
    status: s.status,
    plan: { key: plan.key, name: plan.name, version: version.version, plan_version_id: version.id, interval: plan.interval },
    currency: plan.currency,
    seats,
    billing_anchor: s.billingAnchor,
    started_at: iso(s.startedAt),
    ends_at: isoOrNull(s.endsAt),
    created_at: iso(s.createdAt),
  };
}

export function presentChange(c: SubscriptionChange, asOf: Date): z.infer<typeof changeView> {
  return {
    id: c.id,
    kind: c.kind,
    effective_at: iso(c.effectiveAt),
    data: c.data,
    status: c.canceledAt ? 'canceled' : c.effectiveAt <= asOf ? 'applied' : 'scheduled',
    applied_at: isoOrNull(c.appliedAt),
    canceled_at: isoOrNull(c.canceledAt),
    created_at: iso(c.createdAt),
  };
}

export function presentSubscription(d: SubscriptionDetail): z.infer<typeof subscriptionView> {
  const { subscription: s, asOf } = d;
  const periods = d.periods.map((p) => {
    const cycle = periodContaining(s.billingAnchor, p.periodStart);
    return {
      id: p.id,
      seq: p.seq,
      period_start: iso(p.periodStart),
      period_end: iso(p.periodEnd),
      days: Math.round((p.periodEnd.getTime() - p.periodStart.getTime()) / DAY_MS),
      prorated: cycle.start !== iso(p.periodStart) || cycle.end !== iso(p.periodEnd),
    };
  });
  const addon = (a: SubscriptionDetail['addons'][number]) => ({
    product_key: a.productKey,
    quantity: a.quantity,
    effective_from: iso(a.effectiveFrom),
    effective_to: isoOrNull(a.effectiveTo),
  });
  const changes = d.changes.map((c) => presentChange(c, asOf));
  return {
    ...presentSummary(s, d.plan, d.version, d.state.seats),
    customer_external_id: d.customer.externalId,
    as_of: iso(asOf),
    addons: d.addons.filter((a) => a.effectiveFrom <= asOf && (!a.effectiveTo || a.effectiveTo > asOf)).map(addon),
    addon_schedule: d.addons.map(addon),
    current_period: periods.find((p) => Date.parse(p.period_start) <= asOf.getTime() && asOf.getTime() < Date.parse(p.period_end)) ?? null,
    periods,
    changes,
    scheduled_changes: changes.filter((c) => c.status === 'scheduled'),
  };
}
