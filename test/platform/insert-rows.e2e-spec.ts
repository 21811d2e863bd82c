// insertRows: many rows in one statement, each column in its declared type, exactly what was given.
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditEntry, AuditService, insertRows } from '@closebook/platform';
import { startApi, type TestApi } from '../helpers/api';

describe('insertRows', () => {
  let api: TestApi;
  const em = () => api.orm.em.fork() as EntityManager;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  it('writes every row in one statement with its types kept: exact decimals in JSON, quotes, unicode, instants', async () => {
    const { orgId } = await api.newOrg('insertRows');
    const at = new Date('2026-11-24T03:04:05.678Z');
    const tricky = { amount: '123456789012345678901234.000000001', text: `it's "quoted" \\ and ünïcödé ✓`, nested: [{ a: null }] };
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    await em().transactional((tx) =>
      insertRows(
        tx,
        AuditEntry,
        ids.map((id, i) => ({
          id,
          createdAt: at,
          organizationId: orgId,
          actorKeyId: null,
          actor: 'system',
          action: `test.insert_rows.${i}`,
          resourceType: 'test',
          resourceId: id,
          data: tricky,
          requestId: null,
          idempotencyKey: null,
        })),
      ),
    );
    const rows = await em().execute<{ id: string; action: string; data: unknown; created_at: Date; request_id: string | null }[]>(
      `select id, action, data, created_at, request_id from audit_log where organization_id = ? and resource_type = 'test' order by action`,
      [orgId],
    );
    expect(rows.map((r) => r.id)).toEqual(ids);
    for (const r of rows) {
      expect(r.data).toEqual(tricky);
      expect(new Date(r.created_at).toISOString()).toBe(at.toISOString());
      expect(r.request_id).toBeNull();
    }
  });

  it('refuses a property the entity has no column for, and writes nothing', async () => {
    const { orgId } = await api.newOrg('insertRows refused');
    await expect(
      em().transactional((tx) =>
        insertRows(tx, AuditEntry, [{ id: randomUUID(), organizationId: orgId, actor: 'system', action: 'x', resourceType: 'test', resourceId: 'x', colour: 'red' } as never]),
      ),
    ).rejects.toThrow('AuditEntry has no column for colour');
    const [{ n }] = await em().execute<{ n: number }[]>(`select count(*)::int as n from audit_log where organization_id = ? and resource_type = 'test'`, [orgId]);
    expect(n).toBe(0);
  });

  it('rows naming different properties, and calls naming them in another order, each get exactly their own values', async () => {
    const { orgId } = await api.newOrg('insertRows shapes');
    const base = (id: string) => ({ id, organizationId: orgId, actor: 'system', resourceType: 'test', resourceId: id });
    const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    const at = new Date('2026-11-24T09:00:00.000Z');
    // One call: the second row lacks `data` and `requestId`, which another row names (null for it).
    await em().transactional((tx) =>
      insertRows(tx, AuditEntry, [
        { ...base(a), createdAt: at, action: 'shape.1', data: { k: 'a' }, requestId: 'req-a' },
        { ...base(b), createdAt: at, action: 'shape.2' },
      ]),
    );
    // Another call, the same entity, its properties in another order and a different set.
    await em().transactional((tx) =>
      insertRows(tx, AuditEntry, [
        { requestId: 'req-c', action: 'shape.3', ...base(c) },
        { data: { k: 'd' }, action: 'shape.4', ...base(d) },
      ]),
    );
    const rows = await em().execute<{ resource_id: string; action: string; data: unknown; request_id: string | null; created_at: Date }[]>(
      `select resource_id, action, data, request_id, created_at from audit_log where organization_id = ? and resource_type = 'test' order by action`,
      [orgId],
    );
    expect(rows.map(({ created_at: _, ...r }) => r)).toEqual([
      { resource_id: a, action: 'shape.1', data: { k: 'a' }, request_id: 'req-a' },
      { resource_id: b, action: 'shape.2', data: null, request_id: null },
      { resource_id: c, action: 'shape.3', data: null, request_id: 'req-c' },
      { resource_id: d, action: 'shape.4', data: { k: 'd' }, request_id: null },
    ]);
    expect(rows.slice(0, 2).map((r) => new Date(r.created_at).toISOString())).toEqual([at.toISOString(), at.toISOString()]);
    // Not named by any row of the second call: the column's default (the insert's now()), not a
    // value carried over from the first call's rows.
    for (const r of rows.slice(2)) expect(Math.abs(new Date(r.created_at).getTime() - Date.now())).toBeLessThan(60_000);
  });

  it('AuditService.insertMany writes the entries record() would, in one statement', async () => {
    const { orgId } = await api.newOrg('audit insertMany');
    const audit = api.app.get(AuditService);
    await em().transactional((tx) =>
      audit.insertMany(tx, [
        { organizationId: orgId, action: 'test.many', resourceType: 'test', resourceId: 'a', data: { n: 1 } },
        { organizationId: orgId, action: 'test.many', resourceType: 'test', resourceId: 'b' },
      ]),
    );
    const rows = await em().execute<{ resource_id: string; actor: string; data: unknown }[]>(
      `select resource_id, actor, data from audit_log where organization_id = ? and action = 'test.many' order by resource_id`,
      [orgId],
    );
    expect(rows).toEqual([
      { resource_id: 'a', actor: 'system', data: { n: 1 } },
      { resource_id: 'b', actor: 'system', data: null },
    ]);
  });
});
