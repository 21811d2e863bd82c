#!/usr/bin/env node
// npm run demo: the main job, on its own database (recreated each run) and its own queue prefix.
if (require('./lib/node-flags').relaunchWithNodeFlags()) return;
require('./register-paths');
const { DEFAULT_DATABASE_URL } = require('./lib/services');

const base = new URL(process.env.DATABASE_URL || DEFAULT_DATABASE_URL);
base.pathname = '/closebook_demo';
process.env.DATABASE_URL = process.env.DEMO_DATABASE_URL || base.toString();
process.env.QUEUE_PREFIX = process.env.DEMO_QUEUE_PREFIX || 'closebook_demo';
process.env.LOG_LEVEL = process.env.LOG_LEVEL || 'warn';

const { dropDatabase, ensureDatabase, runMigrations } = require('../dist/libs/platform/src/database/migrate.js');

(async () => {
  const url = process.env.DATABASE_URL;
  console.log(`[demo] database ${new URL(url).pathname.slice(1)} (recreated), queue prefix ${process.env.QUEUE_PREFIX}`);
  await dropDatabase(url);
  await ensureDatabase(url);
  const applied = await runMigrations(url);
  console.log(`[demo] ${applied.length} migration(s) applied`);
  process.argv = [process.argv[0], 'closebook', 'demo', ...process.argv.slice(2)];
  require('../dist/apps/cli/src/main.js');
})().catch((e) => {
  console.error(`[demo] ${e.stack || e.message}`);
  process.exit(1);
});
