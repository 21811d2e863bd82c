import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  OutboxService,
  verifyWebhookSignature,
  WebhookDispatchService,
  WebhookDispatchTrigger,
  WebhookSettings,
  type WebhookEventType,
} from '@closebook/platform';
import { WorkerModule } from '../../apps/worker/src/worker.module';
import { bearer, startApi, type TestApi } from '../helpers/api';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A local HTTP receiver: each path answers the statuses planned for it in turn (the last one repeats). */
class Receiver {
  readonly received: Received[] = [];
  private readonly plans = new Map<string, number[]>();
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '/';
        this.received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const plan = this.plans.get(path) ?? [200];
        const status = plan.length > 1 ? plan.shift()! : plan[0];
        res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status < 300 ? 'ok' : `failing with ${status}`);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A fresh path on this receiver, answering `statuses` in turn. */
  path(name: string, statuses: number[] = [200]): string {
    const path = `/${name}-${randomUUID().slice(0, 8)}`;
    this.plans.set(path, [...statuses]);
    return path;
  }

  on(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('webhooks', () => {
  let api: TestApi;
  let worker: INestApplicationContext;
  const receiver = new Receiver();
  let orgA: { orgId: string; adminKey: string };
  let orgB: { orgId: string; adminKey: string };

  beforeAll(async () => {
    await receiver.start();
    api = await startApi();
    worker = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
    await worker.init();
    orgA = await api.newOrg('Webhooks A');
    orgB = await api.newOrg('Webhooks B');
  });

  afterAll(async () => {
    await worker?.close();
    await api?.close();
    await receiver.stop();
  });

  const createEndpoint = async (key: string, path: string, eventTypes?: string[]) => {
    const res = await api.http
      .post('/v1/webhook-endpoints')
      .set(bearer(key))
      .send({ url: `${receiver.url}${path}`, description: `test ${path}`, ...(eventTypes ? { event_types: eventTypes } : {}) })
      .expect(201);
    return res.body as { id: string; secret: string; event_types: string[] };
  };

  /** Writes an outbox message the way a service does (inside its transaction), then asks for a dispatch. */
  const emit = async (orgId: string, type: WebhookEventType, payload: Record<string, unknown>, kick = true): Promise<string> => {
    const dedupeKey = randomUUID();
    const em = api.orm.em.fork() as EntityManager;
    await em.transactional((tx) => worker.get(OutboxService).emit(tx, { organizationId: orgId, type, payload, dedupeKey }));
    const [row] = await em.execute<{ id: string }[]>('select id from outbox_messages where organization_id = ? and dedupe_key = ?', [orgId, dedupeKey]);
    if (kick) await worker.get(WebhookDispatchTrigger).kick();
    return row.id;
  };

  const deliveriesOf = async (key: string, query: string) => (await api.http.get(`/v1/webhook-deliveries?${query}`).set(bearer(key)).expect(200)).body.data;

  const waitForStatus = (key: string, endpointId: string, status: string) =>
    waitFor(`a ${status} delivery to ${endpointId}`, async () => (await deliveriesOf(key, `endpoint=${endpointId}&status=${status}`))[0]);

  const countDeliveries = async (messageId: string) =>
    Number((await api.orm.em.fork().execute('select count(*)::int as n from webhook_deliveries where message_id = ?', [messageId]))[0].n);

  it('writes many outbox messages in one statement, each dedupe key once, and says which were new', async () => {
    const outbox = worker.get(OutboxService);
    const em = api.orm.em.fork() as EntityManager;
    const [k1, k2, k3] = [randomUUID(), randomUUID(), randomUUID()];
    const msg = (dedupeKey: string, n: number) => ({ organizationId: orgA.orgId, type: 'allowance.threshold_reached' as WebhookEventType, payload: { n }, dedupeKey });
    const first = await em.transactional((tx) => outbox.emitMany(tx, [msg(k1, 1), msg(k2, 2)]));
    expect([...first].sort()).toEqual([k1, k2].sort());
    // A repeat writes only the new key; the first payload of a key stays.
    const second = await em.transactional((tx) => outbox.emitMany(tx, [msg(k1, 10), msg(k3, 3)]));
    expect([...second]).toEqual([k3]);
    const rows = await em.execute<{ dedupe_key: string; n: number }[]>(
      "select dedupe_key, (payload->>'n')::int as n from outbox_messages where organization_id = ? and dedupe_key in (?, ?, ?) order by n",
      [orgA.orgId, k1, k2, k3],
    );
    expect(rows).toEqual([{ dedupe_key: k1, n: 1 }, { dedupe_key: k2, n: 2 }, { dedupe_key: k3, n: 3 }]);
    expect(await em.transactional((tx) => outbox.emitMany(tx, []))).toEqual(new Set());
  });

  it('refuses a bad URL or an unknown event type with a 400 naming the field', async () => {
    for (const url of ['not a url', 'ftp://example.com/in', 'https://user:secret@example.com/in']) {
      const res = await api.http.post('/v1/webhook-endpoints').set(bearer(orgA.adminKey)).send({ url }).expect(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_value', field: 'url' });
    }
    const missing = await api.http.post('/v1/webhook-endpoints').set(bearer(orgA.adminKey)).send({}).expect(400);
    expect(missing.body.error).toMatchObject({ code: 'missing_field', field: 'url' });
    const type = await api.http.post('/v1/webhook-endpoints').set(bearer(orgA.adminKey)).send({ url: 'https://example.com/in', event_types: ['invoice.paid'] }).expect(400);
    expect(type.body.error.field).toBe('event_types[0]');
  });

  it('delivers a signed event to the subscribed endpoint only, and shows the secret once', async () => {
    const pathA = receiver.path('closed');
    const pathB = receiver.path('invoices');
    const pathOff = receiver.path('disabled');
    const a = await createEndpoint(orgA.adminKey, pathA, ['period.closed']);
    const b = await createEndpoint(orgA.adminKey, pathB, ['invoice.finalized']);
    const off = await createEndpoint(orgA.adminKey, pathOff);
    expect(a.secret).toMatch(/^whsec_/);
    expect(off.event_types).toEqual(['*']);
    await api.http.post(`/v1/webhook-endpoints/${off.id}/disable`).set(bearer(orgA.adminKey)).expect(200);

    const messageId = await emit(orgA.orgId, 'period.closed', { period: '2026-10', closed_by: 'key:test' });
    const [got] = await waitFor('the receiver to get the event', async () => receiver.on(pathA).length > 0 && receiver.on(pathA));

    expect(verifyWebhookSignature(a.secret, got.headers['closebook-signature'] as string, got.body, 300)).toBe(true);
    expect(verifyWebhookSignature(b.secret, got.headers['closebook-signature'] as string, got.body, 300)).toBe(false);
    expect(got.headers).toMatchObject({ 'closebook-event-id': messageId, 'closebook-event-type': 'period.closed', 'content-type': 'application/json' });
    const body = JSON.parse(got.body);
    expect(body).toEqual({ id: messageId, type: 'period.closed', created_at: expect.any(String), organization_id: orgA.orgId, data: { period: '2026-10', closed_by: 'key:test' } });

    const delivered = await waitForStatus(orgA.adminKey, a.id, 'succeeded');
    expect(delivered).toMatchObject({ event_id: messageId, event_type: 'period.closed', attempt_count: 1, last_status_code: 200 });
    expect(await countDeliveries(messageId)).toBe(1);
    expect(receiver.on(pathB)).toHaveLength(0);
    expect(receiver.on(pathOff)).toHaveLength(0);

    const list = await api.http.get('/v1/webhook-endpoints').set(bearer(orgA.adminKey)).expect(200);
    const shown = await api.http.get(`/v1/webhook-endpoints/${a.id}`).set(bearer(orgA.adminKey)).expect(200);
    expect(JSON.stringify([list.body, shown.body])).not.toContain(a.secret);
    expect(shown.body).toMatchObject({ id: a.id, enabled: true, event_types: ['period.closed'], secret_hint: expect.stringMatching(/^whsec_/) });
  });

  it('retries an answer of 500 with backoff and keeps both attempts in the delivery log', async () => {
    const org = await api.newOrg('Webhooks retry');
    const path = receiver.path('flaky', [500, 200]);
    const ep = await createEndpoint(org.adminKey, path);
    const messageId = await emit(org.orgId, 'invoice.finalized', { invoice_id: randomUUID() });

    const delivery = await waitForStatus(org.adminKey, ep.id, 'succeeded');
    const detail = (await api.http.get(`/v1/webhook-deliveries/${delivery.id}`).set(bearer(org.adminKey)).expect(200)).body;
    expect(detail).toMatchObject({ status: 'succeeded', attempt_count: 2, event_id: messageId, next_attempt_at: null });
    expect(detail.attempts).toEqual([
      expect.objectContaining({ attempt_number: 1, succeeded: false, status_code: 500, error: 'receiver answered HTTP 500', response_body: 'failing with 500', duration_ms: expect.any(Number) }),
      expect.objectContaining({ attempt_number: 2, succeeded: true, status_code: 200, error: null, response_body: 'ok' }),
    ]);

    const requests = receiver.on(path);
    expect(requests).toHaveLength(2);
    expect(requests.map((r) => r.headers['closebook-event-id'])).toEqual([messageId, messageId]);
    expect(requests[1].body).toBe(requests[0].body);
    for (const r of requests) expect(verifyWebhookSignature(ep.secret, r.headers['closebook-signature'] as string, r.body)).toBe(true);
    await expect(api.orm.em.fork().execute(`update webhook_delivery_attempts set status_code = 200 where delivery_id = ?`, [delivery.id])).rejects.toThrow(/append-only/);
  });

  it('makes one delivery per endpoint however many times, or on how many workers, the dispatch runs', async () => {
    const org = await api.newOrg('Webhooks dispatch');
    const path = receiver.path('once');
    const ep = await createEndpoint(org.adminKey, path, ['allowance.threshold_reached']);
    const dispatch = worker.get(WebhookDispatchService);
    const messageId = await emit(org.orgId, 'allowance.threshold_reached', { threshold: 80 }, false);
    await Promise.all([dispatch.dispatchBatch(api.orm.em.fork()), dispatch.dispatchBatch(api.orm.em.fork()), worker.get(WebhookDispatchTrigger).kick()]);
    // As if a worker died after dispatching: the message is taken up again, and the unique key holds.
    await api.orm.em.fork().execute('update outbox_messages set dispatched_at = null where id = ?', [messageId]);
    await dispatch.dispatchOutbox(api.orm.em.fork());
    expect(await countDeliveries(messageId)).toBe(1);
    const [dispatched] = await api.orm.em.fork().execute('select dispatched_at from outbox_messages where id = ?', [messageId]);
    expect(dispatched.dispatched_at).not.toBeNull();
    await waitForStatus(org.adminKey, ep.id, 'succeeded');
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.on(path)).toHaveLength(1);
  });

  it('sends a pending delivery whose job was lost (a crash between commit and enqueue)', async () => {
    const org = await api.newOrg('Webhooks lost job');
    const path = receiver.path('lost');
    const ep = await createEndpoint(org.adminKey, path, ['exception.escalated']);
    const messageId = await emit(org.orgId, 'exception.escalated', { exception_id: randomUUID() }, false);
    // What a dispatch that died before enqueueing leaves behind: the delivery row, no job, overdue.
    const em = api.orm.em.fork();
    await em.execute(`update outbox_messages set dispatched_at = now() where id = ?`, [messageId]);
    await em.execute(
      `insert into webhook_deliveries (id, organization_id, created_at, message_id, endpoint_id, event_type, status, attempt_count, manual_retries, next_attempt_at)
       values (?, ?, now(), ?, ?, 'exception.escalated', 'pending', 0, 0, now() - interval '1 minute')`,
      [randomUUID(), org.orgId, messageId, ep.id],
    );
    await worker.get(WebhookDispatchTrigger).kick();
    await waitForStatus(org.adminKey, ep.id, 'succeeded');
    expect(receiver.on(path)).toHaveLength(1);
  });

  it('marks a delivery failed after its last attempt, and an operator retry delivers it', async () => {
    const settings = [worker.get(WebhookSettings), api.app.get(WebhookSettings)];
    const attempts = settings.map((s) => s.attempts);
    settings.forEach((s) => (s.attempts = 2));
    try {
      const org = await api.newOrg('Webhooks failed');
      const path = receiver.path('down', [503, 503, 200]);
      const ep = await createEndpoint(org.adminKey, path, ['credit_note.created']);
      await emit(org.orgId, 'credit_note.created', { credit_note_id: randomUUID() });
      const failed = await waitForStatus(org.adminKey, ep.id, 'failed');
      expect(failed).toMatchObject({ attempt_count: 2, last_status_code: 503, last_error: 'receiver answered HTTP 503', next_attempt_at: null });
      expect(failed.completed_at).not.toBeNull();

      const retried = await api.http.post(`/v1/webhook-deliveries/${failed.id}/retry`).set(bearer(org.adminKey)).expect(202);
      expect(retried.body).toMatchObject({ id: failed.id, status: 'pending', manual_retries: 1 });
      const done = await waitForStatus(org.adminKey, ep.id, 'succeeded');
      const detail = (await api.http.get(`/v1/webhook-deliveries/${done.id}`).set(bearer(org.adminKey)).expect(200)).body;
      expect(detail.attempts.map((a: { status_code: number }) => a.status_code)).toEqual([503, 503, 200]);

      const again = await api.http.post(`/v1/webhook-deliveries/${failed.id}/retry`).set(bearer(org.adminKey)).expect(422);
      expect(again.body.error.code).toBe('delivery_not_failed');
      const log = await api.http.get(`/v1/audit-log?resource_id=${failed.id}`).set(bearer(org.adminKey)).expect(200);
      expect(log.body.data.map((e: { action: string }) => e.action)).toEqual(['webhook_delivery.retried']);
    } finally {
      settings.forEach((s, i) => (s.attempts = attempts[i]));
    }
  });

  it('rotates the secret: the old one signs alongside during the grace period, then stops', async () => {
    const org = await api.newOrg('Webhooks rotation');
    const path = receiver.path('rotate');
    const ep = await createEndpoint(org.adminKey, path, ['subscription.converted']);
    const graced = (await api.http.post(`/v1/webhook-endpoints/${ep.id}/rotate-secret`).set(bearer(org.adminKey)).send({ expire_previous_in_hours: 1 }).expect(200)).body;
    expect(graced.secret).not.toBe(ep.secret);
    expect(graced.previous_secret_expires_at).not.toBeNull();
    await emit(org.orgId, 'subscription.converted', { subscription_id: randomUUID() });
    const [first] = await waitFor('the event signed twice', async () => receiver.on(path).length > 0 && receiver.on(path));
    const header = first.headers['closebook-signature'] as string;
    expect(header.split(',').filter((p) => p.startsWith('v1='))).toHaveLength(2);
    expect(verifyWebhookSignature(graced.secret, header, first.body)).toBe(true);
    expect(verifyWebhookSignature(ep.secret, header, first.body)).toBe(true);

    const now = (await api.http.post(`/v1/webhook-endpoints/${ep.id}/rotate-secret`).set(bearer(org.adminKey)).send({}).expect(200)).body;
    expect(now.previous_secret_expires_at).toBeNull();
    await emit(org.orgId, 'subscription.converted', { subscription_id: randomUUID() });
    const [, second] = await waitFor('the second event', async () => receiver.on(path).length > 1 && receiver.on(path));
    expect(verifyWebhookSignature(now.secret, second.headers['closebook-signature'] as string, second.body)).toBe(true);
    expect(verifyWebhookSignature(graced.secret, second.headers['closebook-signature'] as string, second.body)).toBe(false);
  });

  it("answers 404 when another organization touches an endpoint or a delivery", async () => {
    const path = receiver.path('private');
    const ep = await createEndpoint(orgA.adminKey, path, ['exception.opened']);
    await emit(orgA.orgId, 'exception.opened', { exception_id: randomUUID() });
    const delivery = await waitForStatus(orgA.adminKey, ep.id, 'succeeded');
    const asB = bearer(orgB.adminKey);

    await api.http.get(`/v1/webhook-endpoints/${ep.id}`).set(asB).expect(404);
    for (const action of ['disable', 'enable', 'rotate-secret']) {
      const res = await api.http.post(`/v1/webhook-endpoints/${ep.id}/${action}`).set(asB).send({}).expect(404);
      expect(res.body.error.code).toBe('not_found');
    }
    await api.http.get(`/v1/webhook-deliveries/${delivery.id}`).set(asB).expect(404);
    await api.http.post(`/v1/webhook-deliveries/${delivery.id}/retry`).set(asB).expect(404);
    const filtered = await api.http.get(`/v1/webhook-deliveries?endpoint=${ep.id}`).set(asB).expect(404);
    expect(filtered.body.error.field).toBe('endpoint');
    expect((await api.http.get('/v1/webhook-endpoints').set(asB).expect(200)).body.data.map((e: { id: string }) => e.id)).not.toContain(ep.id);
    expect((await deliveriesOf(orgB.adminKey, '')).map((d: { id: string }) => d.id)).not.toContain(delivery.id);
    await api.http.get('/v1/webhook-endpoints/not-a-uuid').set(bearer(orgA.adminKey)).expect(404);
    // Still A's and still enabled.
    expect((await api.http.get(`/v1/webhook-endpoints/${ep.id}`).set(bearer(orgA.adminKey)).expect(200)).body.enabled).toBe(true);
  });

  it('lets finance read endpoints and deliveries but not change endpoints; support sees neither', async () => {
    const key = async (role: string) => (await api.http.post('/v1/api-keys').set(bearer(orgA.adminKey)).send({ role }).expect(201)).body.api_key as string;
    const finance = await key('finance');
    const support = await key('support');
    await api.http.get('/v1/webhook-endpoints').set(bearer(finance)).expect(200);
    await api.http.get('/v1/webhook-deliveries?status=failed&type=period.closed').set(bearer(finance)).expect(200);
    await api.http.post('/v1/webhook-endpoints').set(bearer(finance)).send({ url: 'https://example.com/in' }).expect(403);
    await api.http.get('/v1/webhook-endpoints').set(bearer(support)).expect(403);
    await api.http.get('/v1/webhook-deliveries').set(bearer(support)).expect(403);
    const bad = await api.http.get('/v1/webhook-deliveries?status=lost').set(bearer(finance)).expect(400);
    expect(bad.body.error.field).toBe('status');
  });

  it('pages through the delivery log with a cursor', async () => {
    const org = await api.newOrg('Webhook pages');
    const ep = await createEndpoint(org.adminKey, receiver.path('pages'), ['period.closed']);
    for (let i = 0; i < 3; i++) await emit(org.orgId, 'period.closed', { period: `2026-0${i + 1}` }, false);
    await worker.get(WebhookDispatchTrigger).kick();
    await waitFor('three deliveries', async () => (await deliveriesOf(org.adminKey, `endpoint=${ep.id}&status=succeeded`)).length === 3);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { data: { id: string }[]; next_cursor: string | null } } = await api.http
        .get(`/v1/webhook-deliveries?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        .set(bearer(org.adminKey))
        .expect(200);
      seen.push(...page.body.data.map((d) => d.id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(new Set(seen).size).toBe(3);
  });
});
