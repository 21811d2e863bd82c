import { randomUUID } from 'node:crypto';
import { bearer, startApi, type TestApi } from '../helpers/api';

describe('platform over HTTP', () => {
  let api: TestApi;
  let orgA: { orgId: string; adminKey: string };
  let orgB: { orgId: string; adminKey: string };

  beforeAll(async () => {
    api = await startApi();
    orgA = await api.newOrg('Org A');
    orgB = await api.newOrg('Org B');
  });
  afterAll(() => api.close());

  const createKey = (adminKey: string, role: string, headers: Record<string, string> = {}) =>
    api.http.post('/v1/api-keys').set({ ...bearer(adminKey), ...headers }).send({ role, name: `${role} key` });

  it('answers health without a key, with PostgreSQL and Redis checked', async () => {
    const res = await api.http.get('/v1/health').expect(200);
    expect(res.body.status).toBe('ok');
    expect(res.body.checks.postgres.ok).toBe(true);
    expect(res.body.checks.redis.ok).toBe(true);
  });

  it('refuses a request without a key (401) or with an unknown key (401)', async () => {
    const none = await api.http.get('/v1/api-keys').expect(401);
    expect(none.body.error.code).toBe('unauthorized');
    await api.http.get('/v1/api-keys').set(bearer('cb_not-a-real-key')).expect(401);
  });

  it('shows a new key once and stores only its hash', async () => {
    const res = await createKey(orgA.adminKey, 'finance').expect(201);
    expect(res.body.api_key).toMatch(/^cb_/);
    const [row] = await api.orm.em.getConnection().execute('select key_hash, prefix from api_keys where id = ?', [res.body.id]);
    expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(row.key_hash).not.toContain(res.body.api_key);
    const list = await api.http.get('/v1/api-keys').set(bearer(orgA.adminKey)).expect(200);
    expect(JSON.stringify(list.body)).not.toContain(res.body.api_key);
  });

  it('forbids a support key on an admin route (403) but lets it read what it may', async () => {
    const support = (await createKey(orgA.adminKey, 'support').expect(201)).body.api_key;
    const res = await api.http.get('/v1/api-keys').set(bearer(support)).expect(403);
    expect(res.body.error.code).toBe('forbidden');
    const me = await api.http.get('/v1/organization').set(bearer(support)).expect(200);
    expect(me.body).toMatchObject({ id: orgA.orgId, role: 'support' });
  });

  it("answers 404 when organization B touches organization A's resource", async () => {
    const keyOfA = (await createKey(orgA.adminKey, 'auditor').expect(201)).body.id;
    const res = await api.http.post(`/v1/api-keys/${keyOfA}/revoke`).set(bearer(orgB.adminKey)).expect(404);
    expect(res.body.error.code).toBe('not_found');
    const still = await api.http.get('/v1/api-keys').set(bearer(orgA.adminKey)).expect(200);
    expect(still.body.data.find((k: { id: string }) => k.id === keyOfA).revoked_at).toBeNull();
    const listB = await api.http.get('/v1/api-keys').set(bearer(orgB.adminKey)).expect(200);
    expect(listB.body.data.map((k: { id: string }) => k.id)).not.toContain(keyOfA);
  });

  it('answers 404 (not 500) for an id that is not a UUID', async () => {
    const res = await api.http.post('/v1/api-keys/not-a-uuid/revoke').set(bearer(orgA.adminKey)).expect(404);
    expect(res.body.error.code).toBe('not_found');
  });

  it('a revoked key stops working', async () => {
    const created = (await createKey(orgA.adminKey, 'finance').expect(201)).body;
    await api.http.get('/v1/organization').set(bearer(created.api_key)).expect(200);
    await api.http.post(`/v1/api-keys/${created.id}/revoke`).set(bearer(orgA.adminKey)).expect(200);
    await api.http.get('/v1/organization').set(bearer(created.api_key)).expect(401);
  });

  describe('Idempotency-Key', () => {
    const countKeys = async (orgId: string) =>
      Number((await api.orm.em.getConnection().execute('select count(*)::int as n from api_keys where organization_id = ?', [orgId]))[0].n);

    it('replays the stored answer for a retry and writes one row', async () => {
      const org = await api.newOrg('Idem');
      const before = await countKeys(org.orgId);
      const key = randomUUID();
      const first = await createKey(org.adminKey, 'ingest', { 'Idempotency-Key': key }).expect(201);
      const again = await createKey(org.adminKey, 'ingest', { 'Idempotency-Key': key }).expect(201);
      expect(again.body).toEqual(first.body);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(await countKeys(org.orgId)).toBe(before + 1);
    });

    it('refuses the same key with another body (409) and changes nothing', async () => {
      const org = await api.newOrg('Idem 409');
      const key = randomUUID();
      await createKey(org.adminKey, 'ingest', { 'Idempotency-Key': key }).expect(201);
      const before = await countKeys(org.orgId);
      const res = await createKey(org.adminKey, 'finance', { 'Idempotency-Key': key }).expect(409);
      expect(res.body.error).toMatchObject({ code: 'idempotency_key_reused', field: 'Idempotency-Key' });
      expect(await countKeys(org.orgId)).toBe(before);
    });

    it('lets two concurrent requests with one key produce one effect', async () => {
      const org = await api.newOrg('Idem race');
      const before = await countKeys(org.orgId);
      const key = randomUUID();
      const results = await Promise.all(Array.from({ length: 8 }, () => createKey(org.adminKey, 'support', { 'Idempotency-Key': key })));
      expect(results.map((r) => r.status)).toEqual(Array(8).fill(201));
      expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
      expect(await countKeys(org.orgId)).toBe(before + 1);
    });

    it('scopes keys per organization', async () => {
      const key = randomUUID();
      const a = await createKey(orgA.adminKey, 'support', { 'Idempotency-Key': key }).expect(201);
      const b = await createKey(orgB.adminKey, 'support', { 'Idempotency-Key': key }).expect(201);
      expect(a.body.id).not.toBe(b.body.id);
    });

    it('stores a 4xx answer and replays it', async () => {
      const key = randomUUID();
      const first = await api.http.post('/v1/api-keys').set({ ...bearer(orgA.adminKey), 'Idempotency-Key': key }).send({ role: 'root' }).expect(400);
      const again = await api.http.post('/v1/api-keys').set({ ...bearer(orgA.adminKey), 'Idempotency-Key': key }).send({ role: 'root' }).expect(400);
      expect(again.body).toEqual(first.body);
    });
  });

  describe('bad input is a 400 naming the field, never a 500', () => {
    it('malformed JSON', async () => {
      const res = await api.http.post('/v1/api-keys').set(bearer(orgA.adminKey)).set('Content-Type', 'application/json').send('{"role": ').expect(400);
      expect(res.body.error.code).toBe('malformed_json');
    });

    it('an unknown field', async () => {
      const res = await api.http.post('/v1/api-keys').set(bearer(orgA.adminKey)).send({ role: 'finance', colour: 'blue' }).expect(400);
      expect(res.body.error).toMatchObject({ code: 'unknown_field', field: 'colour' });
    });

    it('a wrong type', async () => {
      const res = await api.http.post('/v1/api-keys').set(bearer(orgA.adminKey)).send({ role: 'finance', name: 42 }).expect(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_type', field: 'name' });
    });

    it('a missing field and a bad enum value', async () => {
      const missing = await api.http.post('/v1/api-keys').set(bearer(orgA.adminKey)).send({}).expect(400);
      expect(missing.body.error).toMatchObject({ code: 'missing_field', field: 'role' });
      const bad = await api.http.post('/v1/api-keys').set(bearer(orgA.adminKey)).send({ role: 'root' }).expect(400);
      expect(bad.body.error).toMatchObject({ code: 'invalid_value', field: 'role' });
    });

    it('a bad query parameter and a bad cursor', async () => {
      const limit = await api.http.get('/v1/audit-log?limit=abc').set(bearer(orgA.adminKey)).expect(400);
      expect(limit.body.error.field).toBe('limit');
      const cursor = await api.http.get('/v1/audit-log?cursor=zzz').set(bearer(orgA.adminKey)).expect(400);
      expect(cursor.body.error).toMatchObject({ code: 'invalid_cursor', field: 'cursor' });
    });
  });

  it('audits every change with who, what, request id and idempotency key, in the same transaction', async () => {
    const key = randomUUID();
    const res = await createKey(orgA.adminKey, 'auditor', { 'Idempotency-Key': key, 'X-Request-Id': 'req-audit-1' }).expect(201);
    const log = await api.http.get(`/v1/audit-log?resource_id=${res.body.id}`).set(bearer(orgA.adminKey)).expect(200);
    expect(log.body.data).toHaveLength(1);
    expect(log.body.data[0]).toMatchObject({ action: 'api_key.created', resource_type: 'api_key', request_id: 'req-audit-1', idempotency_key: key });
    expect(log.body.data[0].actor).toMatch(/^key:cb_/);
    await expect(api.orm.em.getConnection().execute(`update audit_log set action = 'x' where resource_id = ?`, [res.body.id])).rejects.toThrow(/append-only/);
  });

  it('paginates the audit log with a cursor', async () => {
    const org = await api.newOrg('Pages');
    for (const role of ['finance', 'support', 'auditor']) await createKey(org.adminKey, role).expect(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: { id: string }[]; next_cursor: string | null } } = await api.http
        .get(`/v1/audit-log?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        .set(bearer(org.adminKey))
        .expect(200);
      seen.push(...page.body.data.map((e) => e.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    // organization.created + the initial admin key + three keys
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
  });

  it('serves the OpenAPI description generated from the routes', async () => {
    const res = await api.http.get('/docs/openapi.json').expect(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/v1/health', '/v1/api-keys', '/v1/api-keys/{id}/revoke', '/v1/audit-log']));
    expect(res.body.paths['/v1/api-keys'].post.requestBody).toBeDefined();
    // SPEC §9's close, exceptions, ledger, exports and explanation routes are described too.
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining([
        '/v1/periods/{period}/reconciliation-runs',
        '/v1/periods/{period}/reconciliation-runs/{id}',
        '/v1/periods/{period}/close',
        '/v1/periods/{period}/sign-offs',
        '/v1/exception-queues',
        '/v1/exceptions',
        '/v1/exceptions/{id}/resolve',
        '/v1/disputes',
        '/v1/exports',
        '/v1/exports/{id}/file',
        '/v1/ledger/trial-balance',
        '/v1/invoices/{id}/lines/{line_id}/explanation',
      ]),
    );
    expect(res.body.paths['/v1/periods/{period}/close'].post).toBeDefined();
  });
});
