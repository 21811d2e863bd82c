// Once per `npm test`: a database of this run's own (migrated) and a queue prefix of its own.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const root = join(__dirname, '..');

export default async function globalSetup(): Promise<void> {
  // globalSetup runs outside jest's module registry, so the @closebook/* aliases need registering here.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { compilerOptions } = require('../tsconfig.json');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('tsconfig-paths').register({ baseUrl: root, paths: compilerOptions.paths });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ensureDatabase, runMigrations } = require('../libs/platform/src/database/migrate');

  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const base = new URL(process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/closebook');
  base.pathname = `/closebook_test_${runId}`;
  const env = { DATABASE_URL: base.toString(), QUEUE_PREFIX: `cbtest_${runId}`, REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379' };
  await ensureDatabase(env.DATABASE_URL);
  await runMigrations(env.DATABASE_URL);
  // In-band runs (one worker, e.g. on two CPUs) load every test file in this process, and jest
  // exposes this process's globals to each file: drop MikroORM's global metadata store, or the
  // entities of one test file leak into the next ("Map.prototype.set called on incompatible receiver").
  for (const key of Object.getOwnPropertyNames(globalThis)) if (key.startsWith('mikro-orm-')) delete (globalThis as Record<string, unknown>)[key];
  // Handed to the workers through the environment (they are forked after this runs), never through a
  // shared file: two runs at once on one machine must not read each other's database or prefix.
  process.env.CLOSEBOOK_TEST_RUN = JSON.stringify(env);
  mkdirSync(join(root, '.test-run'), { recursive: true });
  writeFileSync(join(root, '.test-run', `env-${runId}.json`), JSON.stringify(env));
}
