import { startApi, bearer, type TestApi } from '../helpers/api';
import { monthStart, sql, tenant, uid, type Tenant } from './fixtures';

describe('POST /v1/events', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  /** A tenant with one metered product, a plan and one subscribed customer. */
  async function setup(): Promise<{ t: Tenant; customer: string; subscriptionId: string }> {
    const t = await tenant(api);
    await t.meter({ key: 'api_calls', event_name: 'api.call', aggregation: 'count', unit: 'calls' });
    await t.plan('starter', [{ product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } }]);
    const { subscriptionId } = await t.subscribe('acme', 'starter');
    return { t, customer: 'acme', subscriptionId };
  }

  const at = (i = 0) => new Date(monthStart(-1).getTime() + 3_600_000 + i * 1000).toISOString();
  const event = (customer: string, id = uid(), i = 0, properties: Record<string, unknown> = {}) => ({
    event_id: id,
    customer_id: customer,
    event_name: 'api.call',
    timestamp: at(i),
    properties,
  });
  const stored = async (orgId: string) =>
    Number((await sql<{ n: string }>(api, 'select count(*) as n from usage_events where organization_id = ?', [orgId]))[0].n);

  it('counts the same 1,000 events sent twice once: the second answer is 1,000 duplicates', async () => {
    const { t, customer } = await setup();
    const events = Array.from({ length: 1000 }, (_, i) => event(customer, `dup-${i}`, i));
    const first = await t.send(events).expect(200);
    expect(first.body).toEqual({ accepted: 1000, duplicates: 0, rejected: [] });
    const second = await t.send(events).expect(200);
    expect(second.body).toEqual({ accepted: 0, duplicates: 1000, rejected: [] });
    expect(await stored(t.orgId)).toBe(1000);
    const keys = await sql<{ n: string }>(api, 'select count(*) as n from usage_event_keys where organization_id = ?', [t.orgId]);
    expect(Number(keys[0].n)).toBe(1000);
  });

  it('counts duplicates inside one batch once (the first occurrence is kept)', async () => {
    const { t, customer } = await setup();
    const a = event(customer, 'same', 1, { v: 'first' });
    const b = event(customer, 'same', 2, { v: 'second' });
    const c = event(customer, 'other', 3);
    const res = await t.send([a, c, b, a]).expect(200);
    expect(res.body).toEqual({ accepted: 2, duplicates: 2, rejected: [] });
    const rows = await sql<{ event_id: string; properties: Record<string, unknown> }>(
      api,
      'select event_id, properties from usage_events where organization_id = ? order by event_id',
      [t.orgId],
    );
    expect(rows).toEqual([
      { event_id: 'other', properties: {} },
      { event_id: 'same', properties: { v: 'first' } },
    ]);
  });

  it('accepts the rest of a batch with 3 bad items and names each one with its index and reason', async () => {
    const { t, customer } = await setup();
    const good = Array.from({ length: 7 }, (_, i) => event(customer, `ok-${i}`, i));
    const batch = [
      good[0],
      { ...event(customer, 'bad-props'), properties: { nested: { no: 1 } } },
      good[1],
      good[2],
      { ...event('nobody', 'bad-customer') },
      good[3],
      { event_id: 'bad-time', customer_id: customer, event_name: 'api.call', timestamp: '2026-02-30T00:00:00Z' },
      ...good.slice(4),
    ];
    const res = await t.send(batch).expect(200);
    expect(res.body.accepted).toBe(7);
    expect(res.body.duplicates).toBe(0);
    expect(res.body.rejected).toEqual([
      { index: 1, event_id: 'bad-props', code: 'invalid_property', reason: expect.stringContaining('properties.nested') },
      { index: 4, event_id: 'bad-customer', code: 'unknown_customer', reason: expect.stringContaining('nobody') },
      { index: 6, event_id: 'bad-time', code: 'invalid_timestamp', reason: expect.any(String) },
    ]);
    expect(await stored(t.orgId)).toBe(7);
  });

  it('rejects a timestamp more than 5 minutes in the future, and accepts one within the tolerance', async () => {
    const { t, customer } = await setup();
    const future = new Date(Date.now() + 10 * 60_000).toISOString();
    const soon = new Date(Date.now() + 60_000).toISOString();
    const res = await t.send([{ ...event(customer, 'future'), timestamp: future }, { ...event(customer, 'soon'), timestamp: soon }]).expect(200);
    expect(res.body).toEqual({
      accepted: 1,
      duplicates: 0,
      rejected: [{ index: 0, event_id: 'future', code: 'timestamp_in_future', reason: expect.stringContaining('5 minutes') }],
    });
  });

  it('checks every field of an item without failing the batch', async () => {
    const { t, customer } = await setup();
    const base = event(customer, 'x');
    const cases: [unknown, string][] = [
      ['not an object', 'invalid_event'],
      [{ ...base, event_id: undefined }, 'missing_field'],
      [{ ...base, event_id: 'y'.repeat(201) }, 'event_id_too_long'],
      [{ ...base, event_id: 42 }, 'invalid_event_id'],
      [{ ...base, event_id: 'nul\u0000' }, 'invalid_event_id'],
      [{ ...base, event_name: '' }, 'invalid_event_name'],
      [{ ...base, customer_id: 7 }, 'invalid_customer_id'],
      [{ ...base, timestamp: '2026-11-01' }, 'invalid_timestamp'],
      [{ ...base, timestamp: '1999-12-31T23:59:59Z' }, 'timestamp_too_old'],
      [{ ...base, properties: [] }, 'invalid_properties'],
      [{ ...base, properties: { s: 'lone \ud800' } }, 'invalid_property'],
      [{ ...base, extra: 1 }, 'unknown_field'],
    ];
    const res = await t.send(cases.map(([e]) => e)).expect(200);
    expect(res.body.accepted).toBe(0);
    expect(res.body.rejected.map((r: { index: number; code: string }) => [r.index, r.code])).toEqual(cases.map(([, code], i) => [i, code]));
    expect(await stored(t.orgId)).toBe(0);
  });

  it('answers 400 for a body that is not {events: [...]} or holds more than 10,000 events', async () => {
    const { t, customer } = await setup();
    const post = (body: unknown) => api.http.post('/v1/events').set(t.auth).set('Content-Type', 'application/json').send(JSON.stringify(body));
    expect((await post([]).expect(400)).body.error).toMatchObject({ code: 'invalid_type' });
    expect((await post({}).expect(400)).body.error).toMatchObject({ code: 'missing_field', field: 'events' });
    expect((await post({ events: {} }).expect(400)).body.error).toMatchObject({ code: 'invalid_type', field: 'events' });
    expect((await post({ events: [], more: 1 }).expect(400)).body.error).toMatchObject({ code: 'unknown_field', field: 'more' });
    const tooMany = Array.from({ length: 10_001 }, (_, i) => event(customer, `m-${i}`, i));
    expect((await post({ events: tooMany }).expect(400)).body.error).toMatchObject({ code: 'too_many_events', field: 'events' });
    expect(await stored(t.orgId)).toBe(0);
    expect((await post({ events: [] }).expect(200)).body).toEqual({ accepted: 0, duplicates: 0, rejected: [] });
  });

  it('lets the ingest role send events and refuses it (403) on billing reads; support may not send', async () => {
    const { t, customer, subscriptionId } = await setup();
    const ingestKey = await t.key('ingest');
    const supportKey = await t.key('support');
    await api.http.post('/v1/events').set(bearer(ingestKey)).send({ events: [event(customer)] }).expect(200);
    await api.http.post('/v1/events').set(bearer(supportKey)).send({ events: [event(customer)] }).expect(403);
    await api.http.get(`/v1/subscriptions/${subscriptionId}/usage`).set(bearer(ingestKey)).expect(403);
  });

  it('scopes event ids per organization and customers per organization', async () => {
    const a = await setup();
    const b = await setup();
    expect((await a.t.send([event('acme', 'shared-id')]).expect(200)).body.accepted).toBe(1);
    expect((await b.t.send([event('acme', 'shared-id')]).expect(200)).body.accepted).toBe(1);
    // b's key cannot write events for a's customers: they are unknown in b.
    await b.t.post('/v1/customers', { external_id: 'only-in-b', name: 'B', currency: 'USD' }).expect(201);
    const res = await a.t.send([event('only-in-b', 'x')]).expect(200);
    expect(res.body.rejected[0]).toMatchObject({ code: 'unknown_customer' });
  });

  it('stores events into monthly partitions created on demand, and keeps dedupe across them', async () => {
    const { t, customer } = await setup();
    const old = new Date(Date.UTC(2019, 5, 15, 12)).toISOString();
    const res = await t.send([{ ...event(customer, 'p1'), timestamp: old }, event(customer, 'p2')]).expect(200);
    expect(res.body.accepted).toBe(2);
    const parts = await sql<{ p: string }>(api, `select tableoid::regclass::text as p from usage_events where organization_id = ? order by ts`, [t.orgId]);
    expect(parts.map((r) => r.p)).toEqual(['usage_events_y2019m06', expect.stringMatching(/^usage_events_y\d{4}m\d{2}$/)]);
    // The same id with another timestamp (another partition) is still a duplicate.
    const again = await t.send([{ ...event(customer, 'p1'), timestamp: new Date().toISOString() }]).expect(200);
    expect(again.body).toEqual({ accepted: 0, duplicates: 1, rejected: [] });
  });

  it('keeps events append-only (the database refuses UPDATE and DELETE)', async () => {
    const { t, customer } = await setup();
    await t.send([event(customer, 'frozen')]).expect(200);
    await expect(sql(api, `update usage_events set event_name = 'x' where organization_id = ?`, [t.orgId])).rejects.toThrow(/append-only/);
    await expect(sql(api, `delete from usage_event_keys where organization_id = ?`, [t.orgId])).rejects.toThrow(/append-only/);
  });

  it('marks the touched (subscription, period) dirty in the same statement, and stores events of a customer without a subscription', async () => {
    const { t, customer, subscriptionId } = await setup();
    // Creating the subscription marked its periods (lifecycle hook): clear them to see ingest's own marks.
    await sql(api, 'delete from usage_rollup_dirty where organization_id = ?', [t.orgId]);
    await t.post('/v1/customers', { external_id: 'no-sub', name: 'No sub', currency: 'USD' }).expect(201);
    const res = await t.send([event(customer, 'd1', 1), event(customer, 'd2', 2), event('no-sub', 'd3', 3)]).expect(200);
    expect(res.body.accepted).toBe(3);
    const dirty = await sql<{ subscription_id: string; period_start: Date }>(
      api,
      'select subscription_id, period_start from usage_rollup_dirty where organization_id = ?',
      [t.orgId],
    );
    expect(dirty.map((d) => ({ ...d, period_start: new Date(d.period_start) }))).toEqual([{ subscription_id: subscriptionId, period_start: monthStart(-1) }]);
    expect(await stored(t.orgId)).toBe(3);
  });

  it('stores an event once when the same batch is sent by several clients at the same time', async () => {
    const { t, customer } = await setup();
    const events = Array.from({ length: 2000 }, (_, i) => event(customer, `race-${i}`, i));
    const reversed = [...events].reverse();
    const answers = await Promise.all([t.send(events), t.send(reversed), t.send(events), t.send(reversed)]);
    for (const a of answers) expect(a.status).toBe(200);
    expect(answers.reduce((n, a) => n + a.body.accepted, 0)).toBe(2000);
    expect(answers.reduce((n, a) => n + a.body.duplicates, 0)).toBe(6000);
    expect(await stored(t.orgId)).toBe(2000);
  });

  it('stores ids, names and properties with tabs, newlines, backslashes, quotes and non-ASCII exactly (COPY and array encoding)', async () => {
    const { t, customer } = await setup();
    const awkward = ['tab\there', 'new\nline\r\n', 'back\\slash\\', 'quote"d', 'comma,{brace}', 'NULL', ' spaced ', 'ünïcødé 🎉', '\\.', 'x\\N'];
    const events = awkward.map((id, i) => ({
      ...event(customer, `${id}-${uid()}`, i, { note: id, path: 'C:\\tmp\\x', n: 12.5, ok: true, none: null }),
      event_name: `name ${id}`,
    }));
    const res = await t.send(events).expect(200);
    expect(res.body).toEqual({ accepted: awkward.length, duplicates: 0, rejected: [] });
    const rows = await sql<{ event_id: string; event_name: string; properties: Record<string, unknown> }>(
      api,
      'select event_id, event_name, properties from usage_events where organization_id = ?',
      [t.orgId],
    );
    const byId = new Map(rows.map((r) => [r.event_id, r]));
    for (const e of events) expect(byId.get(e.event_id)).toEqual({ event_id: e.event_id, event_name: e.event_name, properties: e.properties });
    // The keys are the same strings: sending them again makes duplicates only.
    expect((await t.send(events).expect(200)).body).toEqual({ accepted: 0, duplicates: awkward.length, rejected: [] });
  });

  it('keeps the microseconds and the zone of a timestamp', async () => {
    const { t, customer } = await setup();
    const local = new Date(monthStart(-1).getTime() + 7_200_000).toISOString().replace('.000Z', '.123456+02:00');
    await t.send([{ ...event(customer, 'micro'), timestamp: local }]).expect(200);
    const [row] = await sql<{ same: boolean }>(api, 'select ts = ?::timestamptz as same from usage_events where organization_id = ?', [local, t.orgId]);
    expect(row.same).toBe(true);
  });

  it('waits for an id another API process is inserting and counts it as a duplicate once that commits', async () => {
    const { t, customer } = await setup();
    // Another process's transaction holds the key 'contested', not yet committed.
    const other = await api.orm.em.getKnex().transaction();
    try {
      await other.raw('insert into usage_event_keys (organization_id, event_id, ts) values (?, ?, now())', [t.orgId, 'contested']);
      const pending = t.send([event(customer, 'before'), event(customer, 'contested'), event(customer, 'after')]).then((r) => r);
      await new Promise((r) => setTimeout(r, 500));
      await other.commit();
      const res = await pending;
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ accepted: 2, duplicates: 1, rejected: [] });
    } finally {
      if (!other.isCompleted()) await other.rollback();
    }
    const ids = await sql<{ event_id: string }>(api, 'select event_id from usage_events where organization_id = ? order by event_id', [t.orgId]);
    expect(ids.map((r) => r.event_id)).toEqual(['after', 'before']);
  });

  it('stores an id itself when the other process inserting it rolls back', async () => {
    const { t, customer } = await setup();
    const other = await api.orm.em.getKnex().transaction();
    await other.raw('insert into usage_event_keys (organization_id, event_id, ts) values (?, ?, now())', [t.orgId, 'abandoned']);
    const pending = t.send([event(customer, 'abandoned')]).then((r) => r);
    await new Promise((r) => setTimeout(r, 500));
    await other.rollback();
    expect((await pending).body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    expect(await stored(t.orgId)).toBe(1);
  });

  it('writes nothing of a batch whose transaction fails: keys, events and dirty marks go together', async () => {
    const { t, customer } = await setup();
    await sql(api, 'delete from usage_rollup_dirty where organization_id = ?', [t.orgId]);
    // A dirty mark that cannot be written (a trigger refusing it) fails the batch after its keys and events.
    const fn = `ingest_test_refuse_${t.orgId.replace(/-/g, '')}`;
    await sql(api, `create function ${fn}() returns trigger language plpgsql as $$ begin if new.organization_id = '${t.orgId}' then raise exception 'refused'; end if; return new; end $$`);
    await sql(api, `create trigger ${fn} before insert on usage_rollup_dirty for each row execute function ${fn}()`);
    try {
      await t.send([event(customer, 'atomic-1'), event(customer, 'atomic-2')]).expect(500);
    } finally {
      await sql(api, `drop trigger ${fn} on usage_rollup_dirty`);
      await sql(api, `drop function ${fn}()`);
    }
    expect(await stored(t.orgId)).toBe(0);
    const keys = await sql<{ n: string }>(api, 'select count(*) as n from usage_event_keys where organization_id = ?', [t.orgId]);
    expect(Number(keys[0].n)).toBe(0);
    // Sent again, the batch is stored (nothing half-written blocks it).
    expect((await t.send([event(customer, 'atomic-1'), event(customer, 'atomic-2')]).expect(200)).body.accepted).toBe(2);
  });

  it('replays a retried POST with the same Idempotency-Key', async () => {
    const { t, customer } = await setup();
    const events = [event(customer, 'idem-1'), event(customer, 'idem-2')];
    const first = await api.http.post('/v1/events').set(t.auth).set('Idempotency-Key', 'batch-1').send({ events }).expect(200);
    const retry = await api.http.post('/v1/events').set(t.auth).set('Idempotency-Key', 'batch-1').send({ events }).expect(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toEqual(first.body);
  });
});
