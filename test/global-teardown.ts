// Drops this run's database and its Redis keys (set KEEP_TEST_DB=1 to keep them for a post-mortem).
import Redis from 'ioredis';

export default async function globalTeardown(): Promise<void> {
  if (!process.env.CLOSEBOOK_TEST_RUN) return;
  const run = JSON.parse(process.env.CLOSEBOOK_TEST_RUN);
  if (process.env.KEEP_TEST_DB === '1') {
    console.log(`kept test database ${run.DATABASE_URL} and queue prefix ${run.QUEUE_PREFIX}`);
    return;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { dropDatabase } = require('../libs/platform/src/database/migrate');
  await dropDatabase(run.DATABASE_URL);
  const redis = new Redis(run.REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${run.QUEUE_PREFIX}*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
