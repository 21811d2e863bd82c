// Runs in every jest worker before the tests: points the code at this run's database and at a
// queue prefix of this worker's own, so parallel workers never take each other's jobs.
// CLOSEBOOK_TEST_RUN is set by test/global-setup.ts; pure unit runs (jest.unit.config.js) have none.
const run = process.env.CLOSEBOOK_TEST_RUN ? (JSON.parse(process.env.CLOSEBOOK_TEST_RUN) as { DATABASE_URL: string; QUEUE_PREFIX: string }) : null;
if (run) {
  process.env.DATABASE_URL = run.DATABASE_URL;
  process.env.QUEUE_PREFIX = `${run.QUEUE_PREFIX}_w${process.env.JEST_WORKER_ID ?? '0'}`;
}
process.env.NODE_ENV = 'test';
process.env.LOG_LEVEL = process.env.TEST_LOG_LEVEL ?? 'silent';
