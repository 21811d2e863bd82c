#!/usr/bin/env node
// npm run start:api | start:worker — the compiled entry points with the path aliases resolved.
const app = process.argv[2];
if (!['api', 'worker'].includes(app)) {
  console.error('usage: node scripts/start.js api|worker');
  process.exit(2);
}
if (!require('./lib/node-flags').relaunchWithNodeFlags()) {
  require('./register-paths');
  require(`../dist/apps/${app}/src/main.js`);
}
