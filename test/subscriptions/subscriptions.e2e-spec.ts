import { randomUUID } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { QueueEvents } from 'bullmq';
import { JobsService, loadConfig, redisConnection } from '@closebook/platform';
import { firstPeriod, nextPeriod, periodContaining } from '@closebook/rating';
import { BillingPeriodsService, SubscriptionsService } from '@closebook/subscriptions';
import { WorkerModule } from '../../apps/worker/src/worker.module';
import { bearer, startApi, type TestApi } from '../helpers/api';

const DAY = 86_400_000;
const iso = (day: string) => `${day}T00:00:00.000Z`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PeriodJson {
  seq: number;
  period_start: string;
  period_end: string;
  days: number;
  prorated: boolean;
}

describe('customers and subscriptions over HTTP', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  const sql = (q: string, params: unknown[] = []) => api.orm.em.getConnection().execute(q, params);

  /** A fresh organization with the Starter plan (v1 published), an add-on and a USD customer. */
  async function tenant() {
    const org = await api.newOrg('Subscriptions');
    const auth = bearer(org.adminKey);
    const post = (path: string, body: unknown) => api.http.post(path).set(auth).send(body as object);
    const get = (path: string) => api.http.get(path).set(auth);
    await Promise.all([
      post('/v1/products', { key: 'starter_fee', name: 'Starter plan', kind: 'recurring' }).expect(201),
      post('/v1/products', { key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } }).expect(201),
      post('/v1/products', { key: 'seats', name: 'Seats', kind: 'seat' }).expect(201),
      post('/v1/products', { key: 'sso', name: 'SSO', kind: 'addon' }).expect(201),
      post('/v1/products', { key: 'audit', name: 'Audit trail', kind: 'addon' }).expect(201),
      post('/v1/plans', { key: 'starter', name: 'Starter', currency: 'USD', interval: 'month' }).expect(201),
    ]);
    const version = await post('/v1/plans/starter/versions', {
      products: [
        { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } },
        { product_key: 'seats', included_seats: 3, price: { model: 'per_unit', unit_amount: '15' } },
        { product_key: 'sso', price: { model: 'flat', amount: '25' } },
        { product_key: 'audit', price: { model: 'per_unit', unit_amount: '10' } },
        { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
      ],
    }).expect(201);
    const customer = await post('/v1/customers', { external_id: `acme-${randomUUID().slice(0, 8)}`, name: 'Acme', currency: 'USD', tax_rate: '0.2' }).expect(201);
    return { ...org, auth, post, get, versionId: version.body.id as string, customer: customer.body as { id: string; external_id: string } };
  }

  /** Consecutive, seq-numbered periods with UTC-midnight bounds. */
  function expectContiguous(periods: PeriodJson[]) {
    periods.forEach((p, i) => {
      expect(p.seq).toBe(i + 1);
      expect(p.period_start.endsWith('T00:00:00.000Z') && p.period_end.endsWith('T00:00:00.000Z')).toBe(true);
      if (i) expect(p.period_start).toBe(periods[i - 1].period_end);
    });
  }

  describe('customers', () => {
    let shared: Awaited<ReturnType<typeof tenant>> | undefined;
    it('creates a customer and finds it by id or external id', async () => {
      const t = await tenant();
      expect(t.customer).toMatchObject({ name: 'Acme', currency: 'USD', tax_rate: '0.2', email: null });
      const byId = await t.get(`/v1/customers/${t.customer.id}`).expect(200);
      const byExternal = await t.get(`/v1/customers/${t.customer.external_id}`).expect(200);
      expect(byExternal.body).toEqual(byId.body);
      await t.post('/v1/customers', { external_id: 'beta', name: 'Beta', currency: 'EUR', email: 'ap@beta.example' }).expect(201);
      const page1 = await t.get('/v1/customers?limit=1').expect(200);
      expect(page1.body.data).toHaveLength(1);
      const page2 = await t.get(`/v1/customers?limit=1&cursor=${page1.body.next_cursor}`).expect(200);
      expect([page1.body.data[0].external_id, page2.body.data[0].external_id].sort()).toEqual(['beta', t.customer.external_id].sort());
      expect(page2.body.next_cursor).toBeNull();
    });

    it.each([
      ['an unknown currency', { external_id: 'x', name: 'X', currency: 'XYZ' }, 400, 'unknown_currency', 'currency'],
      ['a tax rate above 1', { external_id: 'x', name: 'X', currency: 'USD', tax_rate: '1.5' }, 400, 'invalid_tax_rate', 'tax_rate'],
      ['a tax rate that is not a decimal', { external_id: 'x', name: 'X', currency: 'USD', tax_rate: '20%' }, 400, 'invalid_decimal', 'tax_rate'],
      ['a bad email', { external_id: 'x', name: 'X', currency: 'USD', email: 'nope' }, 400, 'invalid_value', 'email'],
      ['a missing name', { external_id: 'x', currency: 'USD' }, 400, 'missing_field', 'name'],
    ])('refuses %s', async (_what, body, status, code, field) => {
      const t = (shared ??= await tenant());
      const res = await t.post('/v1/customers', body).expect(status);
      expect(res.body.error).toMatchObject({ code, field });
    });

    it('refuses a duplicate external id (409)', async () => {
      const t = await tenant();
      const res = await t.post('/v1/customers', { external_id: t.customer.external_id, name: 'Again', currency: 'USD' }).expect(409);
      expect(res.body.error).toMatchObject({ code: 'customer_external_id_taken', field: 'external_id' });
    });
  });

  describe('subscriptions and billing periods', () => {
    let refusals: Awaited<ReturnType<typeof tenant>> | undefined;
    it('gives a mid-month start (anchor 1) a prorated first period, then full months through the one after now', async () => {
      const t = await tenant();
      const res = await t
        .post(`/v1/customers/${t.customer.external_id}/subscriptions`, { plan_key: 'starter', seats: 5, started_at: '2026-03-15T10:30:00Z', addons: [{ product_key: 'sso' }] })
        .expect(201);
      const s = res.body;
      expect(s).toMatchObject({
        customer_id: t.customer.id,
        customer_external_id: t.customer.external_id,
        status: 'active',
        plan: { key: 'starter', version: 1, plan_version_id: t.versionId },
        currency: 'USD',
        seats: 5,
        billing_anchor: 1,
        started_at: '2026-03-15T10:30:00.000Z',
        ends_at: null,
        addons: [{ product_key: 'sso', quantity: 1, effective_from: '2026-03-15T10:30:00.000Z', effective_to: null }],
      });
      const periods: PeriodJson[] = s.periods;
      expect(periods[0]).toMatchObject({ seq: 1, period_start: iso('2026-03-15'), period_end: iso('2026-04-01'), days: 17, prorated: true });
      expect(periods[1]).toMatchObject({ seq: 2, period_start: iso('2026-04-01'), period_end: iso('2026-05-01'), days: 30, prorated: false });
      expectContiguous(periods);
      // Through the period containing now, plus one more.
      const now = new Date();
      const current = periodContaining(1, now);
      const after = nextPeriod(current, 1);
      expect(periods[periods.length - 1]).toMatchObject({ period_start: after.start, period_end: after.end });
      expect(s.current_period).toMatchObject({ period_start: current.start, period_end: current.end });
      // The row metering attributes an event to: period_start <= ts < period_end.
      const [row] = await sql('select seq from billing_periods where subscription_id = ? and period_start <= ? and ? < period_end', [s.id, '2026-03-20T12:00:00Z', '2026-03-20T12:00:00Z']);
      expect(row.seq).toBe(1);
    });

    it('handles anchor 31: clamped to short months, prorated first period', async () => {
      const t = await tenant();
      const s = (await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter', plan_version: 1, billing_anchor: 31, started_at: '2026-02-10T08:00:00Z' }).expect(201)).body;
      const first: PeriodJson[] = s.periods.slice(0, 5);
      expect(first.map((p) => [p.period_start.slice(0, 10), p.period_end.slice(0, 10), p.prorated])).toEqual([
        ['2026-02-10', '2026-02-28', true],
        ['2026-02-28', '2026-03-31', false],
        ['2026-03-31', '2026-04-30', false],
        ['2026-04-30', '2026-05-31', false],
        ['2026-05-31', '2026-06-30', false],
      ]);
      expect(first[0].days).toBe(18);
      expectContiguous(s.periods);
      const fp = firstPeriod('2026-02-10T08:00:00Z', 31);
      expect([first[0].period_start, first[0].period_end]).toEqual([fp.period.start, fp.period.end]);
    });

    it('starts on the anchor day without proration, and a future start gets its first period plus one', async () => {
      const t = await tenant();
      const onAnchor = (await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter', billing_anchor: 31, started_at: '2025-04-30T00:00:00Z' }).expect(201)).body;
      expect(onAnchor.periods[0]).toMatchObject({ period_start: iso('2025-04-30'), period_end: iso('2025-05-31'), prorated: false, days: 31 });
      expectContiguous(onAnchor.periods);

      const other = (await t.post('/v1/customers', { external_id: 'future', name: 'Future', currency: 'USD' }).expect(201)).body;
      const start = new Date(Date.now() + 45 * DAY);
      const future = (await t.post(`/v1/customers/${other.id}/subscriptions`, { plan_key: 'starter', billing_anchor: 10, started_at: start.toISOString() }).expect(201)).body;
      const fp = firstPeriod(start, 10);
      expect(future.periods.map((p: PeriodJson) => [p.period_start, p.period_end])).toEqual([
        [fp.period.start, fp.period.end],
        [nextPeriod(fp.period, 10).start, nextPeriod(fp.period, 10).end],
      ]);
      expect(future.current_period).toBeNull();
    });

    it('keeps periods idempotent: ensureThrough twice inserts once, and the database refuses overlapping periods', async () => {
      const t = await tenant();
      const s = (await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter', started_at: '2026-01-01T00:00:00Z' }).expect(201)).body;
      const periods = api.app.get(BillingPeriodsService);
      const em = api.orm.em.fork();
      const until = new Date(Date.parse(s.periods[s.periods.length - 1].period_end) + 40 * DAY);
      const [a, b] = await Promise.all([periods.ensureThrough(em.fork(), s.id, until), periods.ensureThrough(em.fork(), s.id, until)]);
      expect(a + b).toBe(2);
      expect(await periods.ensureThrough(em, s.id, until)).toBe(0);
      const after = (await t.get(`/v1/subscriptions/${s.id}`).expect(200)).body.periods;
      expect(after).toHaveLength(s.periods.length + 2);
      expectContiguous(after);
      await expect(
        sql(`insert into billing_periods (id, organization_id, subscription_id, period_start, period_end, seq) values (?, ?, ?, '2026-01-15', '2026-02-15', 999)`, [randomUUID(), t.orgId, s.id]),
      ).rejects.toThrow(/billing_periods_no_overlap/);
    });

    it('refuses a second overlapping subscription for a customer (409), and the database does too', async () => {
      const t = await tenant();
      const first = (await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter', started_at: '2026-01-10T00:00:00Z' }).expect(201)).body;
      const again = await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter', started_at: '2027-06-01T00:00:00Z' }).expect(409);
      expect(again.body.error).toMatchObject({ code: 'subscription_overlap', field: 'started_at', details: { subscription_id: first.id } });
      const before = await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter', started_at: '2025-01-10T00:00:00Z' }).expect(409);
      expect(before.body.error.code).toBe('subscription_overlap');
      const insert = (start: string, end: string | null) =>
        sql(
          `insert into subscriptions (id, organization_id, customer_id, plan_version_id, status, started_at, ends_at, billing_anchor, seats) values (?, ?, ?, ?, 'active', ?, ?, 1, 1)`,
          [randomUUID(), t.orgId, t.customer.id, t.versionId, start, end],
        );
      await expect(insert('2026-05-01T00:00:00Z', null)).rejects.toThrow(/subscriptions_no_overlap/);
      await expect(insert('2025-12-01T00:00:00Z', '2026-01-10T00:00:01Z')).rejects.toThrow(/subscriptions_no_overlap/);
      // Half-open ranges: a subscription ending exactly when the next starts does not overlap.
      await insert('2025-12-01T00:00:00Z', '2026-01-10T00:00:00Z');
      const list = await t.get(`/v1/customers/${t.customer.external_id}/subscriptions`).expect(200);
      expect(list.body.data.map((x: { started_at: string }) => x.started_at).sort()).toEqual(['2025-12-01T00:00:00.000Z', '2026-01-10T00:00:00.000Z']);
    });

    it('concurrent subscribe requests for one customer produce one subscription', async () => {
      const t = await tenant();
      const results = await Promise.all(Array.from({ length: 4 }, () => t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter' })));
      expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409]);
      const [row] = await sql('select count(*)::int as n from subscriptions where customer_id = ?', [t.customer.id]);
      expect(row.n).toBe(1);
    });

    it.each([
      ['a plan in another currency', { plan_key: 'euro' }, 422, 'currency_mismatch', 'plan_key'],
      ['a draft version', { plan_key: 'starter', plan_version: 2 }, 422, 'plan_version_not_published', 'plan_version'],
      ['an unknown version', { plan_key: 'starter', plan_version: 9 }, 404, 'not_found', 'plan_version'],
      ['an unknown plan', { plan_key: 'nope' }, 404, 'not_found', 'plan_key'],
      ['a plan without a published version', { plan_key: 'empty' }, 422, 'plan_not_published', 'plan_key'],
      ['an add-on the plan does not offer', { plan_key: 'starter', addons: [{ product_key: 'api_calls' }] }, 422, 'addon_not_in_plan', 'addons[0].product_key'],
      ['an add-on twice', { plan_key: 'starter', addons: [{ product_key: 'sso' }, { product_key: 'sso' }] }, 400, 'duplicate_addon', 'addons[1].product_key'],
      ['billing anchor 32', { plan_key: 'starter', billing_anchor: 32 }, 400, 'invalid_value', 'billing_anchor'],
      ['negative seats', { plan_key: 'starter', seats: -1 }, 400, 'invalid_value', 'seats'],
      ['a start that is not a timestamp', { plan_key: 'starter', started_at: 'yesterday' }, 400, 'invalid_value', 'started_at'],
    ])('refuses %s', async (_what, body, status, code, field) => {
      if (!refusals) {
        const t = await tenant();
        await t.post('/v1/plans', { key: 'euro', name: 'Euro', currency: 'EUR', interval: 'month' }).expect(201);
        await t.post('/v1/plans/euro/versions', { products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '45' } }] }).expect(201);
        await t.post('/v1/plans', { key: 'empty', name: 'Empty', currency: 'USD', interval: 'month' }).expect(201);
        await t.post('/v1/plans/starter/versions', { publish: false, products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '59' } }] }).expect(201);
        refusals = t;
      }
      const t = refusals;
      const customer = (await t.post('/v1/customers', { external_id: `c-${randomUUID()}`, name: 'C', currency: 'USD' }).expect(201)).body;
      const res = await t.post(`/v1/customers/${customer.id}/subscriptions`, body).expect(status);
      expect(res.body.error).toMatchObject({ code, field });
      const [row] = await sql('select count(*)::int as n from subscriptions where customer_id = ?', [customer.id]);
      expect(row.n).toBe(0);
    });

    it('pins only published versions, also in the database', async () => {
      const t = await tenant();
      const draft = (await t.post('/v1/plans/starter/versions', { publish: false, products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '59' } }] }).expect(201)).body;
      await expect(
        sql(`insert into subscriptions (id, organization_id, customer_id, plan_version_id, started_at) values (?, ?, ?, ?, now())`, [randomUUID(), t.orgId, t.customer.id, draft.id]),
      ).rejects.toThrow(/published plan version/);
    });
  });

  describe('seat and add-on changes', () => {
    async function subscribed() {
      const t = await tenant();
      const s = (await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter', seats: 3, addons: [{ product_key: 'audit', quantity: 2 }] }).expect(201)).body;
      return { t, s };
    }

    it('records a seat change effective now and updates the seats at once', async () => {
      const { t, s } = await subscribed();
      const res = await t.post(`/v1/subscriptions/${s.id}/seats`, { seats: 12 }).expect(201);
      expect(res.body.change).toMatchObject({ kind: 'seats', status: 'applied', data: { seats: 12, previous_seats: 3 }, applied_at: expect.any(String) });
      expect(res.body.subscription.seats).toBe(12);
      const [row] = await sql('select seats from subscriptions where id = ?', [s.id]);
      expect(row.seats).toBe(12);
      const log = await t.get(`/v1/audit-log?resource_id=${s.id}`).expect(200);
      expect(log.body.data.map((e: { action: string }) => e.action)).toEqual(['subscription.seats_changed', 'subscription.created']);
    });

    it('records a backdated change within the current period, and refuses one before it or before the start', async () => {
      const t = await tenant();
      const s = (await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter', started_at: '2026-01-05T00:00:00Z' }).expect(201)).body;
      const early = await t.post(`/v1/subscriptions/${s.id}/seats`, { seats: 4, effective_at: '2026-01-01T00:00:00Z' }).expect(422);
      expect(early.body.error).toMatchObject({ code: 'effective_before_start', field: 'effective_at' });
      const previous = new Date(Date.parse(s.current_period.period_start) - DAY).toISOString();
      const closed = await t.post(`/v1/subscriptions/${s.id}/seats`, { seats: 4, effective_at: previous }).expect(422);
      expect(closed.body.error).toMatchObject({ code: 'effective_before_current_period', field: 'effective_at' });
      const backdated = s.current_period.period_start;
      const ok = await t.post(`/v1/subscriptions/${s.id}/seats`, { seats: 4, effective_at: backdated }).expect(201);
      expect(ok.body.change).toMatchObject({ effective_at: backdated, status: 'applied', data: { seats: 4, previous_seats: 1 } });
      expect(ok.body.subscription.seats).toBe(4);
    });

    it('schedules a future seat change, refuses one recorded out of order, and applies it when due', async () => {
      const { t, s } = await subscribed();
      const soon = new Date(Date.now() + 1000);
      const scheduled = await t.post(`/v1/subscriptions/${s.id}/seats`, { seats: 7, effective_at: soon.toISOString() }).expect(201);
      expect(scheduled.body.change).toMatchObject({ status: 'scheduled', applied_at: null, data: { seats: 7, previous_seats: 3 } });
      expect(scheduled.body.subscription.seats).toBe(3);
      expect(scheduled.body.subscription.scheduled_changes).toHaveLength(1);
      const outOfOrder = await t.post(`/v1/subscriptions/${s.id}/seats`, { seats: 5 }).expect(422);
      expect(outOfOrder.body.error).toMatchObject({ code: 'change_out_of_order', field: 'effective_at' });

      await sleep(Math.max(0, soon.getTime() - Date.now() + 50));
      // Read side: the state in force now already has the new seats.
      expect((await t.get(`/v1/subscriptions/${s.id}`).expect(200)).body).toMatchObject({ seats: 7, scheduled_changes: [] });
      // Write side: the scheduler's job applies it to the subscription row.
      await api.app.get(SubscriptionsService).applyDueChanges(api.orm.em.fork());
      const [row] = await sql('select seats from subscriptions where id = ?', [s.id]);
      expect(row.seats).toBe(7);
      const [change] = await sql(`select applied_at from subscription_changes where subscription_id = ? and kind = 'seats'`, [s.id]);
      expect(change.applied_at).not.toBeNull();
      const state = await api.app.get(SubscriptionsService).stateAt(api.orm.em.fork(), s.id, new Date(soon.getTime() - 1));
      expect(state.seats).toBe(3);
    });

    it('two seat changes effective and recorded at the same instant are read in one order (by id) by every reader', async () => {
      const { s } = await subscribed();
      const at = new Date(Date.now() + 10 * DAY);
      const [low, high] = ['00000000-0000-4000-8000-000000000001', 'ffffffff-ffff-4fff-bfff-ffffffffffff'];
      // Inserted high first, so neither insertion order nor a physical scan order gives the id order.
      for (const [id, seats] of [[high, 9], [low, 4]] as const) {
        await sql(
          `insert into subscription_changes (id, created_at, organization_id, subscription_id, kind, effective_at, data)
           select ?, '2026-01-01T00:00:00Z', organization_id, id, 'seats', ?, ?::jsonb from subscriptions where id = ?`,
          [id, at.toISOString(), JSON.stringify({ seats, previous_seats: 3 }), s.id],
        );
      }
      const service = api.app.get(SubscriptionsService);
      const after = new Date(at.getTime() + 1);
      expect((await service.stateAt(api.orm.em.fork(), s.id, after)).seats).toBe(9);
      const [many] = await service.segmentsAndEndMany(api.orm.em.fork(), [{ subscriptionId: s.id, from: new Date(), to: new Date(at.getTime() + DAY) }]);
      expect(many.segments.map((x) => x.state.seats)).toEqual([3, 9]);
      expect(many.end.seats).toBe(9);
    });

    it('changes, schedules and removes add-ons through effective ranges', async () => {
      const { t, s } = await subscribed();
      const changed = await t.post(`/v1/subscriptions/${s.id}/addons`, { product_key: 'audit', quantity: 5 }).expect(201);
      expect(changed.body.change).toMatchObject({ kind: 'addon', status: 'applied', data: { product_key: 'audit', quantity: 5, previous_quantity: 2 } });
      expect(changed.body.subscription.addons).toEqual([expect.objectContaining({ product_key: 'audit', quantity: 5, effective_to: null })]);
      const added = await t.post(`/v1/subscriptions/${s.id}/addons`, { product_key: 'sso', quantity: 1 }).expect(201);
      expect(added.body.subscription.addons.map((a: { product_key: string }) => a.product_key)).toEqual(['audit', 'sso']);

      const later = new Date(Date.now() + 20 * DAY).toISOString();
      const removal = await t.post(`/v1/subscriptions/${s.id}/addons`, { product_key: 'sso', quantity: 0, effective_at: later }).expect(201);
      expect(removal.body.change).toMatchObject({ status: 'scheduled', data: { quantity: 0, previous_quantity: 1 } });
      const sub = removal.body.subscription;
      expect(sub.addons.map((a: { product_key: string }) => a.product_key)).toEqual(['audit', 'sso']);
      expect(sub.addon_schedule.filter((a: { product_key: string }) => a.product_key === 'sso')).toEqual([expect.objectContaining({ quantity: 1, effective_to: later })]);
      expect(sub.scheduled_changes).toHaveLength(1);
      const state = await api.app.get(SubscriptionsService).stateAt(api.orm.em.fork(), s.id, new Date(Date.parse(later) + 1));
      expect(state.addons.map((a) => `${a.productKey}:${a.quantity}`)).toEqual(['audit:5']);

      const outOfOrder = await t.post(`/v1/subscriptions/${s.id}/addons`, { product_key: 'sso', quantity: 3 }).expect(422);
      expect(outOfOrder.body.error.code).toBe('change_out_of_order');
      const notOffered = await t.post(`/v1/subscriptions/${s.id}/addons`, { product_key: 'seats', quantity: 1 }).expect(422);
      expect(notOffered.body.error).toMatchObject({ code: 'addon_not_in_plan', field: 'product_key' });
      // Ranges of one add-on never overlap, also for raw SQL.
      await expect(
        sql(`insert into subscription_addons (id, organization_id, subscription_id, product_id, product_key, quantity, effective_from) select ?, organization_id, subscription_id, product_id, product_key, 1, now() - interval '1 hour' from subscription_addons where subscription_id = ? and product_key = 'audit' limit 1`, [randomUUID(), s.id]),
      ).rejects.toThrow(/subscription_addons_no_overlap/);
    });

    it('validates change bodies', async () => {
      const { t, s } = await subscribed();
      expect((await t.post(`/v1/subscriptions/${s.id}/seats`, { seats: 2.5 }).expect(400)).body.error.field).toBe('seats');
      expect((await t.post(`/v1/subscriptions/${s.id}/seats`, { seats: 2, effective_at: 'soon' }).expect(400)).body.error.field).toBe('effective_at');
      expect((await t.post(`/v1/subscriptions/${s.id}/addons`, { product_key: 'sso' }).expect(400)).body.error).toMatchObject({ code: 'missing_field', field: 'quantity' });
      await t.post(`/v1/subscriptions/${randomUUID()}/seats`, { seats: 2 }).expect(404);
      await t.get('/v1/subscriptions/not-a-uuid').expect(404);
    });
  });

  describe('access', () => {
    it("answers 404 for another organization's customers and subscriptions", async () => {
      const a = await tenant();
      const b = await tenant();
      const s = (await a.post(`/v1/customers/${a.customer.id}/subscriptions`, { plan_key: 'starter' }).expect(201)).body;
      await b.get(`/v1/customers/${a.customer.id}`).expect(404);
      await b.get(`/v1/customers/${a.customer.external_id}`).expect(404);
      await b.get(`/v1/customers/${a.customer.id}/subscriptions`).expect(404);
      await b.post(`/v1/customers/${a.customer.id}/subscriptions`, { plan_key: 'starter' }).expect(404);
      await b.get(`/v1/subscriptions/${s.id}`).expect(404);
      await b.post(`/v1/subscriptions/${s.id}/seats`, { seats: 9 }).expect(404);
      await b.post(`/v1/subscriptions/${s.id}/addons`, { product_key: 'sso', quantity: 1 }).expect(404);
      expect((await a.get(`/v1/subscriptions/${s.id}`).expect(200)).body.seats).toBe(1);
    });

    it('lets support read subscriptions but not change them', async () => {
      const t = await tenant();
      const s = (await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter' }).expect(201)).body;
      const support = (await api.http.post('/v1/api-keys').set(t.auth).send({ role: 'support' }).expect(201)).body.api_key;
      await api.http.get(`/v1/subscriptions/${s.id}`).set(bearer(support)).expect(200);
      await api.http.get(`/v1/customers/${t.customer.id}/subscriptions`).set(bearer(support)).expect(200);
      await api.http.post(`/v1/subscriptions/${s.id}/seats`).set(bearer(support)).send({ seats: 2 }).expect(403);
      await api.http.post('/v1/customers').set(bearer(support)).send({ external_id: 'x', name: 'X', currency: 'USD' }).expect(403);
    });
  });

  describe('worker', () => {
    it('schedules subscriptions.extend-periods hourly and its run fills missing periods', async () => {
      const t = await tenant();
      const s = (await t.post(`/v1/customers/${t.customer.id}/subscriptions`, { plan_key: 'starter', started_at: '2026-06-01T00:00:00Z' }).expect(201)).body;
      const full = s.periods.length;
      await sql('delete from billing_periods where subscription_id = ? and seq > 2', [s.id]);

      const worker: INestApplicationContext = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
      await worker.init();
      const config = loadConfig();
      const events = new QueueEvents('billing', { connection: redisConnection(config.redisUrl), prefix: config.queuePrefix });
      events.on('error', () => undefined); // closing races are not test failures
      try {
        const jobs = worker.get(JobsService);
        const schedulers = await jobs.queue('billing').getJobSchedulers();
        expect(schedulers).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ key: 'subscriptions-extend-periods', every: 3_600_000 }),
            expect.objectContaining({ key: 'subscriptions-apply-due-changes' }),
          ]),
        );
        await events.waitUntilReady();
        const job = await jobs.enqueue('subscriptions.extend-periods', {}, { jobId: `extend-test-${randomUUID()}` });
        const result = await job.waitUntilFinished(events, 15_000);
        // The scheduler's first run may have filled them already: either way the job succeeds.
        expect(result).toEqual({ subscriptions: expect.any(Number), periods: expect.any(Number) });
      } finally {
        await events.close();
        await worker.close();
      }
      const after = (await t.get(`/v1/subscriptions/${s.id}`).expect(200)).body.periods;
      expect(after).toHaveLength(full);
      expectContiguous(after);
    });
  });
});
