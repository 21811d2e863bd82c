import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { NestFactory } from '@nestjs/core';
import type { INestApplicationContext } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { QueueEvents } from 'bullmq';
import { checkHandlers, ConfigError, discoverRoutes, jobNames, JobsService, loadConfig, redisConnection } from '@closebook/platform';
import { WorkerModule } from '../../apps/worker/src/worker.module';
import { startApi, type TestApi } from '../helpers/api';

const run = promisify(execFile);
const root = join(__dirname, '..', '..');

describe('configuration', () => {
  it('accepts the defaults and a valid environment', () => {
    const c = loadConfig({ DATABASE_URL: 'postgresql://u@h:5432/db', REDIS_URL: 'redis://h:6379', PORT: '8080', QUEUE_PREFIX: 'run_1' });
    expect(c.port).toBe(8080);
    expect(c.draftWindowMinutes).toBe(60);
  });

  it('stops with a message naming every bad variable', () => {
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x', PORT: '70000', QUEUE_PREFIX: 'has space', DRAFT_WINDOW_MINUTES: '-5' })).toThrow(ConfigError);
    try {
      loadConfig({ DATABASE_URL: 'mysql://x', PORT: '70000', QUEUE_PREFIX: 'has space', DRAFT_WINDOW_MINUTES: '-5' });
    } catch (e) {
      const msg = (e as Error).message;
      for (const name of ['DATABASE_URL', 'PORT', 'QUEUE_PREFIX', 'DRAFT_WINDOW_MINUTES']) expect(msg).toContain(name);
    }
  });
});

describe('job registry', () => {
  it('refuses a job without a handler, with two handlers, or a handler of an unknown job', () => {
    expect(() => checkHandlers(new Map())).toThrow(/has no handler/);
    expect(() => checkHandlers(new Map([['platform.purge-idempotency-keys', ['A.a', 'B.b']]]))).toThrow(/has 2 handlers/);
    expect(() => checkHandlers(new Map([['platform.purge-idempotency-keys', ['A.a']], ['nope', ['C.c']]]))).toThrow(/unknown job "nope"/);
    expect(() => checkHandlers(new Map(jobNames().map((name) => [name, ['A.a']])))).not.toThrow();
  });

  it('boots the worker (the check passes) and runs a job through BullMQ', async () => {
    const worker: INestApplicationContext = await NestFactory.createApplicationContext(WorkerModule, { logger: false });
    await worker.init();
    const jobs = worker.get(JobsService);
    const queue = jobs.queue('platform');
    const events = new QueueEvents('platform', { connection: redisConnection(loadConfig().redisUrl), prefix: loadConfig().queuePrefix });
    events.on('error', () => undefined); // closing races are not test failures
    try {
      await events.waitUntilReady();
      const job = await jobs.enqueue('platform.purge-idempotency-keys', {}, { jobId: `purge-test-${Date.now()}` });
      const result = await job.waitUntilFinished(events, 15_000);
      expect(result).toEqual({ deleted: expect.any(Number) });
      expect(await queue.getJobSchedulers()).toEqual(expect.arrayContaining([expect.objectContaining({ key: 'purge-idempotency-keys' })]));
    } finally {
      await events.close();
      await worker.close();
    }
  });
});

describe('the HTTP surface', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  it('declares the roles (or public access) of every route and documents each one', async () => {
    const routes = discoverRoutes(api.app, 'v1');
    expect(routes.length).toBeGreaterThan(3);
    for (const r of routes) {
      expect({ route: `${r.method} ${r.path}`, declared: r.isPublic || (r.roles?.length ?? 0) > 0 }).toEqual({ route: `${r.method} ${r.path}`, declared: true });
      expect({ route: `${r.method} ${r.path}`, summary: !!r.meta?.summary }).toEqual({ route: `${r.method} ${r.path}`, summary: true });
    }
  });

  it('has migrations that match the entities (a generated migration would be empty)', async () => {
    const orm = api.app.get(MikroORM);
    const diff = await orm.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false });
    expect(diff.trim()).toBe('');
    expect(await orm.getMigrator().checkMigrationNeeded()).toBe(false);
  });
});

describe('CLI', () => {
  it('creates an organization with an admin key and then a key of another role (--json)', async () => {
    const env = { ...process.env, LOG_LEVEL: 'silent' };
    const org = await run('node', [join(root, 'scripts/cli.js'), 'org', 'create', '--name', 'CLI Org', '--json'], { env, cwd: root });
    const created = JSON.parse(org.stdout.trim());
    expect(created).toEqual({ organization_id: expect.any(String), api_key: expect.stringMatching(/^cb_/) });
    const key = await run('node', [join(root, 'scripts/cli.js'), 'key', 'create', '--org', created.organization_id, '--role', 'finance', '--json'], { env, cwd: root });
    expect(JSON.parse(key.stdout.trim())).toMatchObject({ organization_id: created.organization_id, role: 'finance', api_key: expect.stringMatching(/^cb_/) });
  }, 60_000);

  it('refuses a bad role with a clear message and a non-zero exit', async () => {
    const env = { ...process.env, LOG_LEVEL: 'silent' };
    const org = JSON.parse((await run('node', [join(root, 'scripts/cli.js'), 'org', 'create', '--name', 'CLI Org 2', '--json'], { env, cwd: root })).stdout);
    await expect(run('node', [join(root, 'scripts/cli.js'), 'key', 'create', '--org', org.organization_id, '--role', 'root'], { env, cwd: root })).rejects.toMatchObject({
      stderr: expect.stringContaining('role must be one of'),
    });
  }, 60_000);
});
