// Period rating a page at a time (`PeriodRatingService.rateMany`, what the period-end jobs run)
// against the single-period path (`ratePeriod`): the same invoices, lines, allowance ledger, rollup
// links, audit entries and announcements, and a number of statements that does not grow with the page.
import type { EntityManager } from '@mikro-orm/postgresql';
import { PostgreSqlConnection } from '@mikro-orm/postgresql';
import { InvoiceWriter, PeriodRatingService, STATISTICS_REFRESH_AFTER } from '@closebook/invoicing';
import { startApi, type TestApi } from '../helpers/api';
import { DAY, monthStart, rollUp, sendAll, sql, tenant, type Tenant } from './fixtures';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

describe('period rating a page at a time', () => {
  let api: TestApi;
  let rating: PeriodRatingService;
  const em = () => api.orm.em.fork() as EntityManager;
  beforeAll(async () => {
    api = await startApi();
    rating = api.app.get(PeriodRatingService);
  });
  afterAll(async () => {
    await api.close();
  });

  /** A catalog with tiers, rollover, seats and a one-time product; subscriptions of different shapes with usage. */
  async function build(t: Tenant, customers: number) {
    await t.product({ key: 'fee', name: 'Platform fee', kind: 'recurring' });
    await t.product({ key: 'seats', name: 'Seats', kind: 'seat' });
    await t.product({ key: 'setup', name: 'Setup', kind: 'one_time' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.product({ key: 'storage', name: 'Storage', kind: 'metered', unit: 'GB', meter: { event_name: 'storage', aggregation: 'max', property: 'gb' } });
    await t.plan('pro', [
      { product_key: 'fee', price: { model: 'flat', amount: '99' } },
      { product_key: 'seats', included_seats: 2, price: { model: 'per_unit', unit_amount: '12.50' } },
      {
        product_key: 'api_calls',
        allowance: '100',
        rollover_enabled: true,
        rollover_cap: '50',
        rollover_expiry_periods: 1,
        price: { model: 'graduated', tiers: [{ up_to: '100', unit_amount: '0.05' }, { up_to: null, unit_amount: '0.0125' }] },
      },
      { product_key: 'storage', allowance: '10', price: { model: 'per_unit', unit_amount: '0.333' } },
    ]);
    const subs: string[] = [];
    for (let i = 0; i < customers; i++) {
      const shape = i % 4;
      const started = shape === 0 ? monthStart(-2) : monthStart(-1);
      const s = await t.subscribe(`c${i}`, 'pro', { started_at: started, seats: 1 + i, ...(shape === 1 ? { tax_rate: '0.0825' } : {}) });
      subs.push(s.subscriptionId);
      const at = (p: Date, d: number) => new Date(p.getTime() + d * DAY);
      await sendAll(t, [
        ...t.calls(`c${i}`, 'api.call', 40 + 37 * i, at(monthStart(-1), 3)),
        ...(shape === 0 ? t.calls(`c${i}`, 'api.call', 20, at(monthStart(-2), 4)) : []),
        ...(shape !== 3 ? t.calls(`c${i}`, 'storage', 3, at(monthStart(-1), 5), { gb: 9 + i }) : []),
      ]);
      if (shape === 2) {
        await t.post(`/v1/subscriptions/${s.subscriptionId}/charges`, { description: 'Onboarding', quantity: '2', unit_amount: '75', product_key: 'setup', date: at(monthStart(-1), 6).toISOString() }).expect(201);
      }
    }
    await rollUp(api, t.orgId);
    return subs;
  }

  const endedPeriods = (orgId: string) =>
    sql<{ id: string }>(api, `select id from billing_periods where organization_id = ? and period_end <= now() order by subscription_id, seq`, [orgId]).then((r) => r.map((x) => x.id));

  /** Everything a rating wrote for an organization, with ids and instants taken out, by customer. */
  async function written(orgId: string) {
    const invoices = await sql<Record<string, unknown>>(
      api,
      `select c.external_id, i.kind, i.period_start, i.subtotal::text, i.tax_amount::text, i.total::text, i.tax_rate::text, i.tax_line, i.status,
              i.rating_count, i.rating_input, i.allowance,
              (select json_agg(json_build_object('pos', l.position, 'key', l.line_key, 'type', l.type, 'product', l.product_key, 'price', l.price_key,
                        'qty', l.quantity::text, 'exact', l.amount_exact::text, 'amount', l.amount::text, 'desc', l.description, 'steps', l.steps,
                        'meta', l.meta, 'tiers', l.tiers, 'source', l.source_type) order by l.position) from invoice_lines l where l.invoice_id = i.id) as lines,
              (select json_agg(json_build_object('product', r.product_key, 'price', r.price_key, 'count', r.event_count::text, 'agg', r.aggregate::text,
                        'snapshot_is_stored', r.digest = u.digest and r.event_count = u.event_count, 'linked', (select l.line_key from invoice_lines l where l.id = r.invoice_line_id))
                        order by r.product_key, r.price_key, (select l.line_key from invoice_lines l where l.id = r.invoice_line_id)) from invoice_rollups r join usage_rollups u on u.id = r.rollup_id where r.invoice_id = i.id) as rollups,
              (select json_agg(json_build_object('kind', g.kind, 'product', g.product_key, 'qty', g.quantity::text, 'from', g.granted_in_period) order by g.grant_id)
                 from allowance_grants g where g.invoice_id = i.id) as grants,
              (select json_agg(json_build_object('product', d.product_key, 'drawn', d.drawn::text, 'period', d.period_start) order by d.product_key, d.drawn)
                 from allowance_drawdowns d where d.invoice_id = i.id) as drawdowns,
              (select json_agg(json_build_object('kind', x.kind, 'product', x.product_key, 'unused', x.unused::text, 'carried', x.carried::text, 'expired', x.expired::text)
                        order by x.kind, x.product_key) from allowance_expiries x where x.invoice_id = i.id) as expiries,
              (select json_agg(a.data - 'content_hash') from audit_log a where a.resource_id = i.id::text and a.action = 'invoice.created') as audit
       from invoices i join customers c on c.id = i.customer_id
       where i.organization_id = ? and i.kind = 'period'
       order by c.external_id, i.period_start`,
      [orgId],
    );
    const announced = await sql<{ payload: Record<string, unknown> }>(
      api,
      `select payload from outbox_messages where organization_id = ? and type = 'allowance.rolled_over' order by payload->>'usable_from_period', payload->>'carried'`,
      [orgId],
    );
    // Ids differ between organizations; what they point at is compared through the rows above.
    const scrub = (v: unknown) => JSON.parse(JSON.stringify(v).replace(UUID, 'ID'));
    return { invoices: scrub(invoices), announced: scrub(announced.map((a) => a.payload)) };
  }

  it('writes exactly what rating one period at a time writes', async () => {
    const one = await tenant(api, 'Rated one by one');
    const many = await tenant(api, 'Rated a page at a time');
    await build(one, 8);
    await build(many, 8);

    for (const id of await endedPeriods(one.orgId)) await rating.ratePeriod(em(), id);
    const ids = await endedPeriods(many.orgId);
    const results = await rating.rateMany(em(), ids);
    // Eight subscriptions, two of them with two ended periods: the second of each goes the single path after the page.
    expect(results.map((r) => r.billing_period_id)).toEqual(ids);
    expect(results.every((r) => r.created && r.invoice_id && !r.error)).toBe(true);

    const a = await written(one.orgId);
    const b = await written(many.orgId);
    expect(b.invoices).toHaveLength(10);
    expect(b.invoices).toEqual(a.invoices);
    expect(b.announced).toEqual(a.announced);
    expect(b.announced.length).toBeGreaterThan(0);
    // Again: every period is found, nothing is written twice.
    const again = await rating.rateMany(em(), ids);
    expect(again.every((r) => !r.created && r.invoice_id && !r.error)).toBe(true);
    expect((await written(many.orgId)).invoices).toEqual(b.invoices);
  });

  it('a page reads and writes with a number of statements that does not grow with its size, and refuses bad ids per period', async () => {
    const small = await tenant(api, 'Small page');
    const large = await tenant(api, 'Large page');
    await build(small, 4);
    await build(large, 12);
    // The subscriptions whose first period is last month (shapes 1–3: one ended period each), so all go in the page.
    const ready = async (t: Tenant) => {
      const rows = await sql<{ id: string }>(
        api,
        `select bp.id from billing_periods bp where bp.organization_id = ? and bp.period_end <= now()
           and not exists (select 1 from billing_periods e where e.subscription_id = bp.subscription_id and e.seq < bp.seq)
           and bp.period_start = ?::timestamptz order by bp.subscription_id`,
        [t.orgId, monthStart(-1).toISOString()],
      );
      return rows.map((r) => r.id);
    };
    const count = async (ids: string[]) => {
      const spy = jest.spyOn(PostgreSqlConnection.prototype, 'execute');
      try {
        const res = await rating.rateMany(em(), ids);
        expect(res.every((r) => r.created)).toBe(true);
        return spy.mock.calls.length;
      } finally {
        spy.mockRestore();
      }
    };
    const smallIds = await ready(small);
    const largeIds = await ready(large);
    expect(smallIds).toHaveLength(3);
    expect(largeIds).toHaveLength(9);
    const s = await count(smallIds);
    const l = await count(largeIds);
    expect(l).toBe(s);
    expect(s).toBeLessThan(30);

    // An unknown id and a period that has not ended are refused in their own results; the rest are rated.
    const current = await sql<{ id: string }>(api, `select id from billing_periods where organization_id = ? and period_start = ?::timestamptz limit 1`, [
      small.orgId,
      monthStart(0).toISOString(),
    ]);
    const res = await rating.rateMany(em(), ['00000000-0000-4000-8000-000000000000', current[0].id]);
    expect(res.map((r) => r.error?.code)).toEqual(['not_found', 'period_not_ended']);
  });

  it('a large period end refreshes the statistics of the tables it filled; a small one leaves them', async () => {
    const analyzed = () =>
      sql<{ n: number }>(api, `select coalesce(sum(analyze_count), 0)::int as n from pg_stat_user_tables where relname in ('invoice_lines', 'allowance_grants')`).then((r) => r[0].n);
    const spy = jest.spyOn(PostgreSqlConnection.prototype, 'execute');
    try {
      expect(await rating.refreshStatistics(em(), STATISTICS_REFRESH_AFTER - 1)).toBe(false);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
    const before = await analyzed();
    const sent = jest.spyOn(PostgreSqlConnection.prototype, 'execute');
    try {
      expect(await rating.refreshStatistics(em(), STATISTICS_REFRESH_AFTER)).toBe(true);
      // Ours names every table a period end fills (other suites' month-end work analyzes some of them too).
      const statements = sent.mock.calls.map((c) => String(c[0]));
      expect(statements).toHaveLength(1);
      for (const table of ['invoices', 'invoice_lines', 'invoice_rollups', 'allowance_grants', 'allowance_drawdowns', 'allowance_expiries']) {
        expect(statements[0]).toMatch(new RegExp(`^analyze .*\\b${table}\\b`));
      }
    } finally {
      sent.mockRestore();
    }
    // The statistics collector reports with a short delay (other suites may analyze too: at least ours).
    for (let i = 0; i < 50 && (await analyzed()) < before + 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await analyzed()).toBeGreaterThanOrEqual(before + 2);
  });

  it('a period the rating core refuses is reported on its own; a page that cannot commit is rated one period at a time', async () => {
    const t = await tenant(api, 'Refusals in a page');
    const subs = await build(t, 4);
    // A published version the rating core refuses (a currency it does not know), pinned under c1's
    // subscription (one ended period; c0's has two, so its second is left for the page below).
    const refusedSub = subs[1];
    const [broken] = await sql<{ id: string }>(
      api,
      `insert into plan_versions (id, created_at, organization_id, plan_id, version, status, published_at, allowance_multiplier, document)
       select gen_random_uuid(), now(), pv.organization_id, pv.plan_id, pv.version + 100, 'published', now(), pv.allowance_multiplier, jsonb_set(pv.document, '{currency}', '"ZZZ"')
       from plan_versions pv join subscriptions s on s.plan_version_id = pv.id where s.id = ? returning id`,
      [refusedSub],
    );
    await sql(api, 'update subscriptions set plan_version_id = ? where id = ?', [broken.id, refusedSub]);
    // Only the periods whose earlier periods are invoiced go in the page: the first ended periods.
    const firsts = await sql<{ id: string; subscription_id: string }>(
      api,
      `select bp.id, bp.subscription_id from billing_periods bp where bp.organization_id = ? and bp.period_end <= now()
         and not exists (select 1 from billing_periods e where e.subscription_id = bp.subscription_id and e.seq < bp.seq)
       order by bp.subscription_id`,
      [t.orgId],
    );
    const res = await rating.rateMany(em(), firsts.map((p) => p.id));
    const refusedPeriod = firsts.find((p) => p.subscription_id === refusedSub)!.id;
    expect(res.find((r) => r.billing_period_id === refusedPeriod)).toMatchObject({ created: false, error: expect.objectContaining({ code: 'rating_failed' }) });
    expect(res.filter((r) => r.billing_period_id !== refusedPeriod).every((r) => r.created && r.invoice_id)).toBe(true);
    const invoiced = await sql<{ subscription_id: string }>(api, `select subscription_id from invoices where organization_id = ? and kind = 'period'`, [t.orgId]);
    expect(invoiced.map((i) => i.subscription_id).sort()).toEqual(firsts.filter((p) => p.subscription_id !== refusedSub).map((p) => p.subscription_id).sort());

    // The next periods, with the page's write failing once: each goes the single path and is rated once.
    const seconds = await sql<{ id: string }>(
      api,
      `select bp.id from billing_periods bp where bp.organization_id = ? and bp.period_end <= now() and bp.subscription_id <> ?
         and not exists (select 1 from invoices i where i.kind = 'period' and i.billing_period_id = bp.id) order by bp.subscription_id`,
      [t.orgId, refusedSub],
    );
    expect(seconds.length).toBeGreaterThan(0);
    const spy = jest.spyOn(InvoiceWriter.prototype, 'writeMany').mockImplementationOnce(() => Promise.reject(new Error('the page fails once')));
    try {
      const again = await rating.rateMany(em(), seconds.map((p) => p.id));
      expect(again.every((r) => r.created && r.invoice_id && !r.error)).toBe(true);
      expect(spy.mock.calls.length).toBe(1 + seconds.length);
    } finally {
      spy.mockRestore();
    }
    const [{ n, distinct }] = await sql<{ n: number; distinct: number }>(
      api,
      `select count(*)::int as n, count(distinct billing_period_id)::int as distinct from invoices where organization_id = ? and kind = 'period'`,
      [t.orgId],
    );
    expect(n).toBe(distinct);
    expect(n).toBe(invoiced.length + seconds.length);
  });
});
