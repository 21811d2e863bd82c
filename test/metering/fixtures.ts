// Test fixtures for metering: a tenant with its admin key, and its catalog, customers and
// subscriptions created through the catalog and subscriptions HTTP API (as a platform would).
import { EntityManager } from '@mikro-orm/postgresql';
import { RollupsService } from '@closebook/metering';
import { bearer, type TestApi } from '../helpers/api';
import { rollUpUntilDone } from '../helpers/roll-up';

export const DAY_MS = 86_400_000;

/** 00:00 UTC on the first day of the month `offset` months from now (0 = this month). */
export function monthStart(offset = 0, now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
}

export const ymd = (d: Date) => d.toISOString().slice(0, 10);

export interface MeterSpec {
  key: string;
  name?: string;
  unit?: string;
  event_name: string;
  aggregation: 'count' | 'sum' | 'max' | 'unique_count' | 'latest';
  property?: string;
  filter?: Record<string, string | number | boolean>;
  price_key_label?: string;
}

export async function tenant(api: TestApi, name = 'Metering') {
  const org = await api.newOrg(name);
  const auth = bearer(org.adminKey);
  const t = {
    ...org,
    auth,
    post: (path: string, body: unknown) => api.http.post(path).set(auth).send(body as object),
    get: (path: string) => api.http.get(path).set(auth),
    key: async (role: string) => (await api.http.post('/v1/api-keys').set(auth).send({ role }).expect(201)).body.api_key as string,

    async meter(m: MeterSpec) {
      await t
        .post('/v1/products', {
          key: m.key,
          name: m.name ?? m.key,
          kind: 'metered',
          unit: m.unit ?? 'units',
          meter: { event_name: m.event_name, aggregation: m.aggregation, ...(m.property ? { property: m.property } : {}), ...(m.filter ? { filter: m.filter } : {}) },
          ...(m.price_key_label ? { price_key_label: m.price_key_label } : {}),
        })
        .expect(201);
    },

    async product(body: Record<string, unknown>) {
      await t.post('/v1/products', body).expect(201);
    },

    /** A published plan version; `products` in the shape of POST /v1/plans/{key}/versions. */
    async plan(key: string, products: Record<string, unknown>[], opts: { allowance_multiplier?: string; currency?: string } = {}) {
      await t.post('/v1/plans', { key, name: key, currency: opts.currency ?? 'USD', interval: 'month' }).expect(201);
      const res = await t.post(`/v1/plans/${key}/versions`, { products, ...(opts.allowance_multiplier ? { allowance_multiplier: opts.allowance_multiplier } : {}) });
      if (res.status !== 201) throw new Error(`plan version: ${res.status} ${JSON.stringify(res.body)}`);
    },

    /** A customer subscribed to `planKey` from `startedAt` (default: the first of last month). */
    async subscribe(externalId: string, planKey: string, opts: { seats?: number; started_at?: Date; currency?: string } = {}) {
      const c = await t.post('/v1/customers', { external_id: externalId, name: externalId, currency: opts.currency ?? 'USD' });
      if (c.status !== 201) throw new Error(`customer: ${c.status} ${JSON.stringify(c.body)}`);
      const s = await t.post(`/v1/customers/${encodeURIComponent(externalId)}/subscriptions`, {
        plan_key: planKey,
        ...(opts.seats !== undefined ? { seats: opts.seats } : {}),
        started_at: (opts.started_at ?? monthStart(-1)).toISOString(),
      });
      if (s.status !== 201) throw new Error(`subscription: ${s.status} ${JSON.stringify(s.body)}`);
      return { customerId: c.body.id as string, externalId, subscriptionId: s.body.id as string };
    },

    send(events: unknown[], key = org.adminKey) {
      return api.http.post('/v1/events').set(bearer(key)).send({ events });
    },
  };
  return t;
}
export type Tenant = Awaited<ReturnType<typeof tenant>>;

/**
 * Runs what the rollup job runs (a fresh MikroORM context, like the job dispatcher gives a job) until
 * none of the organization's pairs is left: another suite's worker sweeping this shared database may
 * hold a page with some of them (skipped as busy here) for a moment. Processed counts add up.
 */
export async function rollUp(api: TestApi, organizationId?: string) {
  return rollUpUntilDone(api.app.get(RollupsService), () => api.orm.em.fork() as EntityManager, organizationId);
}

export const sql = <T = Record<string, unknown>>(api: TestApi, q: string, params: unknown[] = []) =>
  api.orm.em.fork().getConnection().execute(q, params) as Promise<T[]>;

let seq = 0;
/** Unique ids across the suite (and across runs: tests share nothing but the database). */
export const uid = (p = 'e') => `${p}-${Date.now().toString(36)}-${(seq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
