// Fixtures for the invoicing suites: a tenant with its catalog built over HTTP (as a platform
// would), the worker run in-process for the period-end pipeline, and small SQL helpers.
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { QueueEvents } from 'bullmq';
import { JobsService, loadConfig, redisConnection } from '@closebook/platform';
import { IngestService, RollupsService } from '@closebook/metering';
import { PeriodRatingService } from '@closebook/invoicing';
import { WorkerModule } from '../../apps/worker/src/worker.module';
import { bearer, type TestApi } from '../helpers/api';
import { rollUpUntilDone } from '../helpers/roll-up';

export const DAY = 86_400_000;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** 00:00 UTC on the first day of the month `offset` months from now (0 = this month). */
export function monthStart(offset = 0, now = new Date()): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
}

let seq = 0;
export const uid = (p = 'e') => `${p}-${Date.now().toString(36)}-${(seq++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

export const sql = <T = Record<string, unknown>>(api: TestApi, q: string, params: unknown[] = []) =>
  api.orm.em.fork().getConnection().execute(q, params) as Promise<T[]>;

export interface Money {
  amount: string;
  currency: string;
}

export interface LineJson {
  id: string;
  type: string;
  line_key: string;
  product_key: string | null;
  price_key: string | null;
  period_start: string;
  period_end: string;
  quantity: string;
  unit_amount: string | null;
  amount: Money;
  amount_exact: string;
  description: string;
  steps: unknown[];
  proration: { label: string } | null;
  rollups: { rollup_id: string; event_count: string; aggregate: string; digest: string }[];
  source: { type: string; id: string } | null;
}

export interface InvoiceJson {
  id: string;
  kind: string;
  status: string;
  number: string | null;
  subscription_id: string;
  period_start: string;
  period_end: string;
  issue_date: string;
  subtotal: Money;
  tax: Money;
  total: Money;
  tax_line: { rate: string; amount: Money; description: string } | null;
  lines: LineJson[];
  content_hash: string;
  rating_count: number;
  amount_due: Money;
}

export async function tenant(api: TestApi, name = 'Invoicing') {
  const org = await api.newOrg(name);
  const auth = bearer(org.adminKey);
  const t = {
    ...org,
    auth,
    post: (path: string, body: unknown) => api.http.post(path).set(auth).send(body as object),
    get: (path: string) => api.http.get(path).set(auth),
    key: async (role: string) => (await api.http.post('/v1/api-keys').set(auth).send({ role }).expect(201)).body.api_key as string,

    async product(body: Record<string, unknown>) {
      const r = await t.post('/v1/products', body);
      if (r.status !== 201) throw new Error(`product: ${r.status} ${JSON.stringify(r.body)}`);
    },

    /** A plan with one published version; `products` in the shape of POST /v1/plans/{key}/versions. */
    async plan(key: string, products: Record<string, unknown>[], opts: { proration_strategy?: string; interval?: string; allowance_rollover_default?: boolean } = {}) {
      const p = await t.post('/v1/plans', { key, name: key, currency: 'USD', interval: opts.interval ?? 'month', ...(opts.proration_strategy ? { proration_strategy: opts.proration_strategy } : {}), ...(opts.allowance_rollover_default !== undefined ? { allowance_rollover_default: opts.allowance_rollover_default } : {}) });
      if (p.status !== 201) throw new Error(`plan: ${p.status} ${JSON.stringify(p.body)}`);
      const v = await t.post(`/v1/plans/${key}/versions`, { products });
      if (v.status !== 201) throw new Error(`plan version: ${v.status} ${JSON.stringify(v.body)}`);
      return v.body as { id: string };
    },

    async customer(externalId: string, taxRate?: string) {
      const c = await t.post('/v1/customers', { external_id: externalId, name: externalId, currency: 'USD', ...(taxRate ? { tax_rate: taxRate } : {}) });
      if (c.status !== 201) throw new Error(`customer: ${c.status} ${JSON.stringify(c.body)}`);
      return c.body as { id: string; external_id: string };
    },

    async subscribe(externalId: string, planKey: string, opts: { seats?: number; started_at?: Date; tax_rate?: string; addons?: { product_key: string; quantity?: number }[] } = {}) {
      const customer = await t.customer(externalId, opts.tax_rate);
      const s = await t.post(`/v1/customers/${encodeURIComponent(externalId)}/subscriptions`, {
        plan_key: planKey,
        ...(opts.seats !== undefined ? { seats: opts.seats } : {}),
        ...(opts.addons ? { addons: opts.addons } : {}),
        started_at: (opts.started_at ?? monthStart(-1)).toISOString(),
      });
      if (s.status !== 201) throw new Error(`subscription: ${s.status} ${JSON.stringify(s.body)}`);
      return { customerId: customer.id, externalId, subscriptionId: s.body.id as string, subscription: s.body };
    },

    async send(events: unknown[]) {
      const r = await t.post('/v1/events', { events });
      if (r.status !== 200 && r.status !== 201) throw new Error(`events: ${r.status} ${JSON.stringify(r.body)}`);
      if (r.body.rejected?.length) throw new Error(`events rejected: ${JSON.stringify(r.body.rejected)}`);
      return r.body as { accepted: number; duplicates: number };
    },

    /** `count` events of `eventName` for a customer spread over a day of `month`. */
    calls(customer: string, eventName: string, count: number, at: Date, properties: Record<string, unknown> = {}) {
      return Array.from({ length: count }, (_, i) => ({
        event_id: uid('ev'),
        customer_id: customer,
        event_name: eventName,
        timestamp: new Date(at.getTime() + (i % 1000) * 1000).toISOString(),
        properties,
      }));
    },

    async invoices(q = '') {
      return (await t.get(`/v1/invoices?limit=100${q}`).expect(200)).body.data as InvoiceJson[];
    },

    async invoice(id: string) {
      return (await t.get(`/v1/invoices/${id}`).expect(200)).body as InvoiceJson;
    },

    async periodInvoice(subscriptionId: string, periodStart: Date) {
      const list = await t.invoices(`&subscription=${subscriptionId}&kind=period`);
      const inv = list.find((i) => i.period_start === periodStart.toISOString());
      if (!inv) throw new Error(`no period invoice for ${subscriptionId} from ${periodStart.toISOString()}: ${JSON.stringify(list.map((i) => i.period_start))}`);
      return t.invoice(inv.id);
    },
  };
  return t;
}
export type Tenant = Awaited<ReturnType<typeof tenant>>;

/**
 * `count` `api.call` events of `customer` at `at`, through the ingest service itself as of `clock`
 * (so a test can date events in a month whose clock it chooses); every event must be accepted.
 */
export async function ingestCalls(api: TestApi, t: Tenant, customer: string, count: number, at: Date, clock: Date) {
  const res = await api.app.get(IngestService).ingest(api.orm.em.fork() as EntityManager, t.orgId, t.calls(customer, 'api.call', count, at), clock.getTime());
  expect(res).toMatchObject({ accepted: count, rejected: [] });
}

/** Sends events in batches of 10,000 (the API's limit). */
export async function sendAll(t: Tenant, events: unknown[]) {
  for (let i = 0; i < events.length; i += 10_000) await t.send(events.slice(i, i + 10_000));
}

/**
 * Runs what the rollup job runs for an organization (a fresh context, as the job dispatcher gives
 * one) until none of its pairs is left: another suite's worker sweeping this shared database may
 * hold a page with some of them (skipped as busy here) for a moment.
 */
export async function rollUp(api: TestApi, organizationId: string) {
  return rollUpUntilDone(api.app.get(RollupsService), () => api.orm.em.fork() as EntityManager, organizationId);
}

/** The worker, in this process: the same module `npm run start:worker` boots. */
export async function startWorker(): Promise<{ worker: INestApplicationContext; jobs: JobsService; events: QueueEvents; close(): Promise<void> }> {
  const worker = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
  await worker.init();
  const config = loadConfig();
  const events = new QueueEvents('billing', { connection: redisConnection(config.redisUrl), prefix: config.queuePrefix });
  events.on('error', () => undefined); // closing races are not test failures
  await events.waitUntilReady();
  const jobs = worker.get(JobsService);
  return {
    worker,
    jobs,
    events,
    async close() {
      await events.close();
      await worker.close();
    },
  };
}

/**
 * Period end for one organization through the real pipeline: the `invoicing.period-end` job starts
 * the BullMQ flows, whose children rate; waits until every ended period of the organization has
 * its period invoice.
 */
export async function runPeriodEnd(api: TestApi, w: Awaited<ReturnType<typeof startWorker>>, organizationId: string, timeoutMs = 30_000) {
  const job = await w.jobs.enqueue('invoicing.period-end', { organization_id: organizationId }, { jobId: uid('period-end') });
  const started = await job.waitUntilFinished(w.events, timeoutMs);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [{ n }] = await sql<{ n: number }>(
      api,
      `select count(*)::int as n from billing_periods bp where bp.organization_id = ? and bp.period_end <= now()
       and not exists (select 1 from invoices i where i.kind = 'period' and i.billing_period_id = bp.id)`,
      [organizationId],
    );
    if (n === 0) return started;
    if (Date.now() > deadline) {
      // Say why: rate the first missing period here, where its error is visible.
      const [missing] = await sql<{ id: string }>(
        api,
        `select bp.id from billing_periods bp where bp.organization_id = ? and bp.period_end <= now()
         and not exists (select 1 from invoices i where i.kind = 'period' and i.billing_period_id = bp.id) order by bp.period_end limit 1`,
        [organizationId],
      );
      const why = await api.app.get(PeriodRatingService).ratePeriod(api.orm.em.fork() as EntityManager, missing.id).then(() => 'rated on retry', (e: Error) => e.message);
      throw new Error(`period end did not rate every period (${n} left: ${why}); flows: ${JSON.stringify(started)}`);
    }
    await sleep(100);
  }
}
