// Runs in every jest worker before the tests: points the code at this run's database and at a
// queue prefix of this worker's own, so parallel workers never take each other's jobs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const runFile = join(__dirname, '..', '.test-run', 'env.json');
try {
  const run = JSON.parse(readFileSync(runFile, 'utf8')) as { DATABASE_URL: string; QUEUE_PREFIX: string };
  process.env.DATABASE_URL = run.DATABASE_URL;
  process.env.QUEUE_PREFIX = `${run.QUEUE_PREFIX}_w${process.env.JEST_WORKER_ID ?? '0'}`;
} catch {
  // Pure unit runs (jest.unit.config.js) have no database.
}
process.env.NODE_ENV = 'test';
process.env.LOG_LEVEL = process.env.TEST_LOG_LEVEL ?? 'silent';
