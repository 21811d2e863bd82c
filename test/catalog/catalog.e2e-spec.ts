import { ratePeriodInvoice, type RatingPlanVersion } from '@closebook/rating';
import { CatalogService } from '@closebook/catalog';
import { bearer, startApi, type TestApi } from '../helpers/api';

const iso = (day: string) => `${day}T00:00:00.000Z`;

describe('catalog over HTTP', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  /** A fresh organization and helpers bound to its admin key. */
  async function tenant() {
    const org = await api.newOrg('Catalog');
    const auth = bearer(org.adminKey);
    return {
      ...org,
      post: (path: string, body: unknown) => api.http.post(path).set(auth).send(body as object),
      put: (path: string, body: unknown) => api.http.put(path).set(auth).send(body as object),
      get: (path: string) => api.http.get(path).set(auth),
      key: async (role: string) => (await api.http.post('/v1/api-keys').set(auth).send({ role }).expect(201)).body.api_key as string,
    };
  }
  type Tenant = Awaited<ReturnType<typeof tenant>>;

  const sql = (q: string, params: unknown[] = []) => api.orm.em.getConnection().execute(q, params);

  /** Products and a USD monthly plan for SPEC §10's "$49/mo incl. 10,000 API calls, $0.005/call over". */
  async function starter(t: Tenant, plan = 'starter') {
    await t.post('/v1/products', { key: 'starter_fee', name: 'Starter plan', kind: 'recurring' }).expect(201);
    await t.post('/v1/products', { key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } }).expect(201);
    await t.post('/v1/plans', { key: plan, name: 'Starter', currency: 'USD', interval: 'month' }).expect(201);
  }
  const starterVersion = {
    products: [
      { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ],
  };

  describe('products', () => {
    it('creates every kind and every meter aggregation, and reads them back', async () => {
      const t = await tenant();
      const bodies = [
        { key: 'base', name: 'Base fee', kind: 'recurring' },
        { key: 'seats', name: 'Seats', kind: 'seat', unit: 'seat' },
        { key: 'sso', name: 'SSO', kind: 'addon' },
        { key: 'onboarding', name: 'Onboarding', kind: 'one_time', unit: 'hour' },
        { key: 'calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } },
        { key: 'gb', name: 'Bandwidth', kind: 'metered', unit: 'GB', meter: { event_name: 'cdn.transfer', aggregation: 'sum', property: 'gb', filter: { region: 'eu', cached: false, tier: 2 } }, price_key_label: 'environment' },
        { key: 'peak', name: 'Peak connections', kind: 'metered', unit: 'connections', meter: { event_name: 'conn.sample', aggregation: 'max', property: 'open' } },
        { key: 'mau', name: 'Active users', kind: 'metered', unit: 'users', meter: { event_name: 'user.seen', aggregation: 'unique_count', property: 'user_id' } },
        { key: 'storage', name: 'Storage', kind: 'metered', unit: 'GB', meter: { event_name: 'storage.gauge', aggregation: 'latest', property: 'gb' } },
      ];
      for (const body of bodies) {
        const res = await t.post('/v1/products', body).expect(201);
        expect(res.body).toMatchObject({ key: body.key, kind: body.kind, name: body.name, unit: body.unit ?? null, price_key_label: body.price_key_label ?? null });
        expect(res.body.meter).toEqual(
          body.meter ? { event_name: body.meter.event_name, aggregation: body.meter.aggregation, property: body.meter.property ?? null, filter: body.meter.filter ?? null } : null,
        );
      }
      const gb = await t.get('/v1/products/gb').expect(200);
      expect(gb.body.meter).toEqual({ event_name: 'cdn.transfer', aggregation: 'sum', property: 'gb', filter: { region: 'eu', cached: false, tier: 2 } });
      // The metering engine reads these columns with SQL: the contract.
      const [row] = await sql('select meter_event_name, meter_aggregation, meter_property, meter_filter, price_key_label, unit from products where organization_id = ? and key = ?', [t.orgId, 'gb']);
      expect(row).toEqual({ meter_event_name: 'cdn.transfer', meter_aggregation: 'sum', meter_property: 'gb', meter_filter: { region: 'eu', cached: false, tier: 2 }, price_key_label: 'environment', unit: 'GB' });

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { body: { data: { key: string }[]; next_cursor: string | null } } = await t.get(`/v1/products?limit=4${cursor ? `&cursor=${cursor}` : ''}`).expect(200);
        seen.push(...page.body.data.map((p) => p.key));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(seen.sort()).toEqual(bodies.map((b) => b.key).sort());
      const metered = await t.get('/v1/products?kind=metered').expect(200);
      expect(metered.body.data).toHaveLength(5);
    });

    it.each([
      ['a metered product without a meter', { key: 'x', name: 'X', kind: 'metered', unit: 'calls' }, 'meter_required', 'meter'],
      ['a metered product without a unit', { key: 'x', name: 'X', kind: 'metered', meter: { event_name: 'e', aggregation: 'count' } }, 'missing_field', 'unit'],
      ['a sum meter without a property', { key: 'x', name: 'X', kind: 'metered', unit: 'GB', meter: { event_name: 'e', aggregation: 'sum' } }, 'meter_property_required', 'meter.property'],
      ['a count meter with a property', { key: 'x', name: 'X', kind: 'metered', unit: 'calls', meter: { event_name: 'e', aggregation: 'count', property: 'p' } }, 'meter_property_not_allowed', 'meter.property'],
      ['an unknown aggregation', { key: 'x', name: 'X', kind: 'metered', unit: 'calls', meter: { event_name: 'e', aggregation: 'avg' } }, 'invalid_value', 'meter.aggregation'],
      ['a filter value that is an object', { key: 'x', name: 'X', kind: 'metered', unit: 'calls', meter: { event_name: 'e', aggregation: 'count', filter: { a: { b: 1 } } } }, 'invalid_value', 'meter.filter.a'],
      ['a meter on a recurring product', { key: 'x', name: 'X', kind: 'recurring', meter: { event_name: 'e', aggregation: 'count' } }, 'meter_not_allowed', 'meter'],
      ['a price key on a seat product', { key: 'x', name: 'X', kind: 'seat', price_key_label: 'env' }, 'price_key_label_not_allowed', 'price_key_label'],
      ['an unknown kind', { key: 'x', name: 'X', kind: 'usage' }, 'invalid_value', 'kind'],
      ['a key with a slash', { key: 'a/b', name: 'X', kind: 'addon' }, 'invalid_value', 'key'],
    ])('refuses %s (400 naming the field)', async (_what, body, code, field) => {
      const t = await tenant();
      const res = await t.post('/v1/products', body).expect(400);
      expect(res.body.error).toMatchObject({ code, field });
    });

    it('refuses a second product with the same key (409) but allows it in another organization', async () => {
      const a = await tenant();
      const b = await tenant();
      await a.post('/v1/products', { key: 'sso', name: 'SSO', kind: 'addon' }).expect(201);
      const dup = await a.post('/v1/products', { key: 'sso', name: 'SSO again', kind: 'addon' }).expect(409);
      expect(dup.body.error).toMatchObject({ code: 'product_key_taken', field: 'key' });
      await b.post('/v1/products', { key: 'sso', name: 'SSO', kind: 'addon' }).expect(201);
    });
  });

  describe('plans and versions', () => {
    it("round-trips SPEC §10's $49/mo incl. 10,000 API calls, $0.005 over — and the stored document rates to 124.00", async () => {
      const t = await tenant();
      await starter(t);
      const created = await t.post('/v1/plans/starter/versions', starterVersion).expect(201);
      expect(created.body).toMatchObject({ plan_key: 'starter', version: 1, status: 'published', currency: 'USD', interval: 'month', allowance_multiplier: '1' });
      expect(created.body.published_at).toEqual(expect.any(String));
      const expected: RatingPlanVersion = {
        plan_key: 'starter',
        version: 1,
        name: 'Starter',
        currency: 'USD',
        interval: 'month',
        allowance_multiplier: '1',
        allowance_rollover_default: false,
        products: [
          { kind: 'recurring', product_key: 'starter_fee', name: 'Starter plan', price: { model: 'flat', amount: '49' } },
          {
            kind: 'metered',
            product_key: 'api_calls',
            name: 'API calls',
            unit: 'calls',
            allowance_basis: 'fixed',
            rollover_enabled: false,
            rollover_expiry_periods: 1,
            overage: 'bill',
            allowance: '10000',
            price: { model: 'per_unit', unit_amount: '0.005' },
          },
        ],
      };
      expect(created.body.document).toEqual(expected);
      const read = await t.get('/v1/plans/starter/versions/1').expect(200);
      expect(read.body).toEqual(created.body);
      expect(read.body.products.map((p: { product_id: string }) => p.product_id)).toEqual([expect.any(String), expect.any(String)]);

      const doc = await api.app.get(CatalogService).ratingPlanVersion(api.orm.em.fork(), created.body.id);
      expect(doc).toEqual(expected);
      // Many at once: published (remembered, frozen); another organization's or an unknown version is a 404.
      const catalog = api.app.get(CatalogService);
      const many = await catalog.ratingPlanDocuments(api.orm.em.fork(), [{ id: created.body.id, organizationId: t.orgId }, { id: created.body.id }]);
      expect([...many.keys()]).toEqual([created.body.id]);
      expect(many.get(created.body.id)).toEqual({ document: expected, published: true });
      expect(Object.isFrozen(many.get(created.body.id)!.document)).toBe(true);
      const other = (await tenant()).orgId;
      await expect(catalog.ratingPlanDocuments(api.orm.em.fork(), [{ id: created.body.id, organizationId: other }])).rejects.toMatchObject({ code: 'not_found' });
      await expect(catalog.ratingPlanDocuments(api.orm.em.fork(), [{ id: '00000000-0000-4000-8000-000000000000' }])).rejects.toMatchObject({ code: 'not_found' });
      await expect(catalog.ratingPlanVersion(api.orm.em.fork(), 'not-a-uuid')).rejects.toMatchObject({ code: 'not_found' });
      const jan = { start: iso('2026-01-01'), end: iso('2026-02-01') };
      const invoice = ratePeriodInvoice({
        subscription_id: 'sub',
        subscription_start: iso('2025-06-01'),
        period: jan,
        segments: [{ from: jan.start, plan: doc }],
        usage: [{ product_key: 'api_calls', quantity: '25000' }],
      });
      expect(invoice.subtotal).toBe('124.00');

      // The product rows mirror the document for SQL readers.
      const rows = await sql(
        `select product_key, kind, position, allowance, allowance_basis, rollover_enabled, rollover_cap, rollover_expiry_periods, overage, included_seats, price, keyed_prices
         from plan_version_products where plan_version_id = ? order by position`,
        [created.body.id],
      );
      expect(rows).toEqual([
        { product_key: 'starter_fee', kind: 'recurring', position: 0, allowance: null, allowance_basis: null, rollover_enabled: null, rollover_cap: null, rollover_expiry_periods: null, overage: null, included_seats: null, price: { model: 'flat', amount: '49' }, keyed_prices: null },
        { product_key: 'api_calls', kind: 'metered', position: 1, allowance: '10000', allowance_basis: 'fixed', rollover_enabled: false, rollover_cap: null, rollover_expiry_periods: 1, overage: 'bill', included_seats: null, price: { model: 'per_unit', unit_amount: '0.005' }, keyed_prices: null },
      ]);

      const plan = await t.get('/v1/plans/starter').expect(200);
      expect(plan.body).toMatchObject({ key: 'starter', currency: 'USD', latest_published_version: 1, versions: [{ version: 1, status: 'published' }] });
    });

    it('round-trips the per-seat GB example ($20 per user, 5 GB per user, $2/GB over) and keyed prices; it rates to 260.00', async () => {
      const t = await tenant();
      await t.post('/v1/products', { key: 'users', name: 'Users', kind: 'seat' }).expect(201);
      await t.post('/v1/products', { key: 'storage', name: 'Storage', kind: 'metered', unit: 'GB', meter: { event_name: 'storage.used', aggregation: 'max', property: 'gb' } }).expect(201);
      await t.post('/v1/products', { key: 'bandwidth', name: 'Bandwidth', kind: 'metered', unit: 'GB', meter: { event_name: 'cdn.transfer', aggregation: 'sum', property: 'gb' }, price_key_label: 'environment' }).expect(201);
      await t.post('/v1/plans', { key: 'team', name: 'Team', currency: 'USD', interval: 'month', allowance_rollover_default: true, proration_strategy: 'prorated_next_invoice' }).expect(201);
      const body = {
        allowance_multiplier: '1',
        products: [
          { product_key: 'users', included_seats: 0, price: { model: 'per_unit', unit_amount: '20', currency: 'USD' } },
          { product_key: 'storage', allowance: '5', allowance_basis: 'per_seat', rollover_enabled: false, price: { model: 'per_unit', unit_amount: '2' } },
          {
            product_key: 'bandwidth',
            rollover_cap: '500',
            rollover_expiry_periods: 2,
            keyed_prices: [
              { key: 'prod', price: { model: 'graduated', tiers: [{ up_to: '1000', unit_amount: '0.10' }, { up_to: null, unit_amount: '0.08', flat_amount: '5' }] }, allowance: '100' },
              { key: '*', price: { model: 'package', package_size: '100', package_amount: '1.50' } },
            ],
          },
        ],
      };
      const created = await t.post('/v1/plans/team/versions', body).expect(201);
      const doc = created.body.document as RatingPlanVersion;
      expect(doc).toMatchObject({ allowance_rollover_default: true, proration_strategy: 'prorated_next_invoice' });
      expect(doc.products).toEqual([
        { kind: 'seat', product_key: 'users', name: 'Users', included_seats: 0, price: { model: 'per_unit', unit_amount: '20' } },
        { kind: 'metered', product_key: 'storage', name: 'Storage', unit: 'GB', allowance: '5', allowance_basis: 'per_seat', rollover_enabled: false, rollover_expiry_periods: 1, overage: 'bill', price: { model: 'per_unit', unit_amount: '2' } },
        {
          kind: 'metered',
          product_key: 'bandwidth',
          name: 'Bandwidth',
          unit: 'GB',
          allowance_basis: 'fixed',
          rollover_enabled: true,
          rollover_cap: '500',
          rollover_expiry_periods: 2,
          overage: 'bill',
          price_key_label: 'environment',
          keyed_prices: [
            { key: 'prod', price: body.products[2].keyed_prices![0].price, allowance: '100' },
            { key: '*', price: body.products[2].keyed_prices![1].price, allowance: '0' },
          ],
        },
      ]);
      expect((await t.get('/v1/plans/team/versions/1').expect(200)).body).toEqual(created.body);
      const jan = { start: iso('2026-01-01'), end: iso('2026-02-01') };
      const invoice = ratePeriodInvoice({
        subscription_id: 'sub',
        subscription_start: iso('2025-06-01'),
        period: jan,
        segments: [{ from: jan.start, plan: doc, seats: 10 }],
        usage: [{ product_key: 'storage', quantity: '80' }],
      });
      expect(invoice.subtotal).toBe('260.00');
    });

    it('numbers versions 1, 2, 3… and latest published follows them', async () => {
      const t = await tenant();
      await starter(t);
      await t.post('/v1/plans/starter/versions', starterVersion).expect(201);
      const v2 = await t.post('/v1/plans/starter/versions', { ...starterVersion, products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '59' } }, starterVersion.products[1]] }).expect(201);
      expect(v2.body.version).toBe(2);
      const draft = await t.post('/v1/plans/starter/versions', { ...starterVersion, publish: false }).expect(201);
      expect(draft.body).toMatchObject({ version: 3, status: 'draft', published_at: null });
      const plan = await t.get('/v1/plans/starter').expect(200);
      expect(plan.body.latest_published_version).toBe(2);
      expect(plan.body.versions.map((v: { version: number; status: string }) => `${v.version}:${v.status}`)).toEqual(['1:published', '2:published', '3:draft']);
      const list = await t.get('/v1/plans').expect(200);
      expect(list.body.data.map((p: { key: string }) => p.key)).toEqual(['starter']);
    });

    it('lets a draft be edited, then publishing freezes it: edits are refused (409) and raw SQL fails too', async () => {
      const t = await tenant();
      await starter(t);
      const draft = await t.post('/v1/plans/starter/versions', { ...starterVersion, publish: false }).expect(201);
      const edited = await t.put('/v1/plans/starter/versions/1', { products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '39' } }, starterVersion.products[1]] }).expect(200);
      expect(edited.body.status).toBe('draft');
      expect(edited.body.document.products[0].price).toEqual({ model: 'flat', amount: '39' });
      const published = await t.post('/v1/plans/starter/versions/1/publish', {}).expect(200);
      expect(published.body).toMatchObject({ status: 'published', version: 1 });
      const again = await t.post('/v1/plans/starter/versions/1/publish', {}).expect(200);
      expect(again.body.published_at).toBe(published.body.published_at);

      const refused = await t.put('/v1/plans/starter/versions/1', starterVersion).expect(409);
      expect(refused.body.error).toMatchObject({ code: 'plan_version_published', field: 'version' });
      expect((await t.get('/v1/plans/starter/versions/1').expect(200)).body.document.products[0].price).toEqual({ model: 'flat', amount: '39' });

      const id = draft.body.id;
      await expect(sql(`update plan_versions set document = '{}'::jsonb where id = ?`, [id])).rejects.toThrow(/published and immutable/);
      await expect(sql(`update plan_versions set status = 'draft' where id = ?`, [id])).rejects.toThrow(/published and immutable/);
      await expect(sql('delete from plan_versions where id = ?', [id])).rejects.toThrow(/published and immutable/);
      await expect(sql(`update plan_version_products set allowance = 1 where plan_version_id = ?`, [id])).rejects.toThrow(/immutable/);
      await expect(sql('delete from plan_version_products where plan_version_id = ?', [id])).rejects.toThrow(/immutable/);
      const [row] = await sql('select count(*)::int as n from plan_version_products where plan_version_id = ?', [id]);
      expect(row.n).toBe(2);
    });

    it('audits every catalog write', async () => {
      const t = await tenant();
      await starter(t);
      const v = await t.post('/v1/plans/starter/versions', { ...starterVersion, publish: false }).expect(201);
      await t.post('/v1/plans/starter/versions/1/publish', {}).expect(200);
      const log = await t.get('/v1/audit-log?limit=50').expect(200);
      const actions = log.body.data.map((e: { action: string }) => e.action);
      expect(actions).toEqual(expect.arrayContaining(['product.created', 'plan.created', 'plan_version.created', 'plan_version.published']));
      const published = log.body.data.find((e: { action: string }) => e.action === 'plan_version.published');
      expect(published).toMatchObject({ resource_type: 'plan_version', resource_id: v.body.id, actor: expect.stringMatching(/^key:cb_/) });
    });

    describe('refuses a bad version with a 400 naming the field, and writes nothing', () => {
      const cases: [string, unknown, string, string][] = [
        [
          'tiers out of order',
          { products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '49' } }, { product_key: 'api_calls', price: { model: 'graduated', tiers: [{ up_to: '1000', unit_amount: '0.01' }, { up_to: '500', unit_amount: '0.005' }, { up_to: null, unit_amount: '0.001' }] } }] },
          'tier_not_ascending',
          'products[1].price.tiers[1].up_to',
        ],
        [
          'an unknown product key',
          { products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '49' } }, { product_key: 'nope', price: { model: 'flat', amount: '1' } }] },
          'unknown_product',
          'products[1].product_key',
        ],
        [
          'prices in several currencies',
          { products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '49', currency: 'USD' } }, { product_key: 'api_calls', price: { model: 'per_unit', unit_amount: '0.005', currency: 'EUR' } }] },
          'mixed_currencies',
          'products[1].price.currency',
        ],
        [
          "a price in a currency other than the plan's",
          { products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '49', currency: 'EUR' } }] },
          'currency_mismatch',
          'products[0].price.currency',
        ],
        [
          "a flat fee finer than the plan currency's minor unit",
          { products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '49.001' } }] },
          'too_many_decimals',
          'products[0].price.amount',
        ],
        [
          'a seat product twice',
          { products: [{ product_key: 'seats', price: { model: 'per_unit', unit_amount: '15' } }, { product_key: 'more_seats', price: { model: 'per_unit', unit_amount: '10' } }] },
          'duplicate_seat_product',
          'products',
        ],
        [
          'the same product twice',
          { products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '49' } }, { product_key: 'starter_fee', price: { model: 'flat', amount: '49' } }] },
          'duplicate_product',
          'products[1].product_key',
        ],
        [
          'a recurring fee that is not flat',
          { products: [{ product_key: 'starter_fee', price: { model: 'per_unit', unit_amount: '49' } }] },
          'flat_price_required',
          'products[0].price.model',
        ],
        [
          'an allowance on a recurring product',
          { products: [{ product_key: 'starter_fee', allowance: '10', price: { model: 'flat', amount: '49' } }] },
          'term_not_allowed',
          'products[0].allowance',
        ],
        [
          'a one_time product',
          { products: [{ product_key: 'setup', price: { model: 'flat', amount: '100' } }] },
          'product_kind_not_allowed',
          'products[0].product_key',
        ],
        [
          'a metered product without a price',
          { products: [{ product_key: 'api_calls', allowance: '10' }] },
          'invalid_price_model',
          'products[0].price',
        ],
        [
          'keyed prices on a product without a price key',
          { products: [{ product_key: 'api_calls', keyed_prices: [{ key: 'prod', price: { model: 'per_unit', unit_amount: '1' } }] }] },
          'price_key_label_missing',
          'products[0].keyed_prices',
        ],
        [
          'a keyed product priced without keys',
          { products: [{ product_key: 'bandwidth', price: { model: 'per_unit', unit_amount: '1' } }] },
          'keyed_prices_required',
          'products[0].keyed_prices',
        ],
        [
          'an allowance that is not a decimal string',
          { products: [{ product_key: 'api_calls', allowance: '10k', price: { model: 'per_unit', unit_amount: '1' } }] },
          'invalid_decimal',
          'products[0].allowance',
        ],
        [
          'an allowance as a JSON number',
          { products: [{ product_key: 'api_calls', allowance: 10000, price: { model: 'per_unit', unit_amount: '1' } }] },
          'invalid_type',
          'products[0].allowance',
        ],
        [
          'an unknown price model',
          { products: [{ product_key: 'api_calls', price: { model: 'stairstep', unit_amount: '1' } }] },
          'unknown_model',
          'products[0].price.model',
        ],
        [
          'a bad allowance multiplier',
          { allowance_multiplier: '-1', products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '49' } }] },
          'invalid_decimal',
          'allowance_multiplier',
        ],
        ['no products', { products: [] }, 'invalid_value', 'products'],
        ['an unknown field', { products: [{ product_key: 'starter_fee', price: { model: 'flat', amount: '49' }, discount: '10' }] }, 'unknown_field', 'products[0].discount'],
      ];

      let t: Tenant;
      beforeAll(async () => {
        t = await tenant();
        await starter(t);
        await t.post('/v1/products', { key: 'seats', name: 'Seats', kind: 'seat' }).expect(201);
        await t.post('/v1/products', { key: 'more_seats', name: 'More seats', kind: 'seat' }).expect(201);
        await t.post('/v1/products', { key: 'setup', name: 'Setup', kind: 'one_time' }).expect(201);
        await t.post('/v1/products', { key: 'bandwidth', name: 'Bandwidth', kind: 'metered', unit: 'GB', meter: { event_name: 'cdn', aggregation: 'sum', property: 'gb' }, price_key_label: 'environment' }).expect(201);
      });

      it.each(cases)('%s', async (_what, body, code, field) => {
        const res = await t.post('/v1/plans/starter/versions', body).expect(400);
        expect(res.body.error).toMatchObject({ code, field });
        expect((await t.get('/v1/plans/starter').expect(200)).body.versions).toEqual([]);
      });

      it('and the same rules on a draft edit', async () => {
        await t.post('/v1/plans/starter/versions', { ...starterVersion, publish: false }).expect(201);
        const res = await t.put('/v1/plans/starter/versions/1', cases[0][1]).expect(400);
        expect(res.body.error).toMatchObject({ code: 'tier_not_ascending', field: 'products[1].price.tiers[1].up_to' });
      });
    });

    it('refuses a plan in an unknown currency, a duplicate plan key, and a version of an unknown plan', async () => {
      const t = await tenant();
      const cur = await t.post('/v1/plans', { key: 'p', name: 'P', currency: 'usd', interval: 'month' }).expect(400);
      expect(cur.body.error).toMatchObject({ code: 'unknown_currency', field: 'currency' });
      const interval = await t.post('/v1/plans', { key: 'p', name: 'P', currency: 'USD', interval: 'week' }).expect(400);
      expect(interval.body.error).toMatchObject({ field: 'interval' });
      await t.post('/v1/plans', { key: 'p', name: 'P', currency: 'USD', interval: 'month' }).expect(201);
      const dup = await t.post('/v1/plans', { key: 'p', name: 'P', currency: 'USD', interval: 'month' }).expect(409);
      expect(dup.body.error).toMatchObject({ code: 'plan_key_taken', field: 'key' });
      await t.post('/v1/plans/nope/versions', starterVersion).expect(404);
      await t.get('/v1/plans/p/versions/7').expect(404);
      const bad = await t.get('/v1/plans/p/versions/x').expect(400);
      expect(bad.body.error).toMatchObject({ code: 'invalid_version', field: 'version' });
    });
  });

  describe('access', () => {
    it("answers 404 for another organization's products, plans and versions", async () => {
      const a = await tenant();
      const b = await tenant();
      await starter(a);
      await a.post('/v1/plans/starter/versions', { ...starterVersion, publish: false }).expect(201);
      await b.get('/v1/products/starter_fee').expect(404);
      await b.get('/v1/plans/starter').expect(404);
      await b.get('/v1/plans/starter/versions/1').expect(404);
      await b.put('/v1/plans/starter/versions/1', starterVersion).expect(404);
      await b.post('/v1/plans/starter/versions/1/publish', {}).expect(404);
      expect((await b.get('/v1/products').expect(200)).body.data).toEqual([]);
      expect((await a.get('/v1/plans/starter/versions/1').expect(200)).body.status).toBe('draft');
    });

    it('lets support and auditor keys read but not write; ingest keys neither', async () => {
      const t = await tenant();
      await starter(t);
      for (const role of ['support', 'auditor']) {
        const key = await t.key(role);
        await api.http.get('/v1/products').set(bearer(key)).expect(200);
        await api.http.get('/v1/plans/starter').set(bearer(key)).expect(200);
        await api.http.post('/v1/products').set(bearer(key)).send({ key: 'k', name: 'K', kind: 'addon' }).expect(403);
      }
      const finance = await t.key('finance');
      await api.http.post('/v1/products').set(bearer(finance)).send({ key: 'k', name: 'K', kind: 'addon' }).expect(201);
      const ingest = await t.key('ingest');
      await api.http.get('/v1/products').set(bearer(ingest)).expect(403);
    });
  });
});
