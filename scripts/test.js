#!/usr/bin/env node
// npm test: every suite (unit, property, integration, end-to-end) against real PostgreSQL and Redis,
// in a database and queue prefix of this run's own. Prints `tests: N passed, N failed` last.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
// Per run, so two runs at once never read each other's counts.
const out = path.resolve(root, process.env.JEST_JSON_OUT || path.join('.test-run', `jest-${process.pid}.json`));
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.rmSync(out, { force: true });

const jest = spawnSync(
  process.execPath,
  [require.resolve('jest/bin/jest'), '--json', `--outputFile=${out}`, '--maxWorkers=2', ...process.argv.slice(2)],
  { stdio: 'inherit', cwd: root },
);
const summary = require('./lib/summary');
const line = summary(out);
console.log(line.text);
process.exit(jest.status === 0 && line.ok ? 0 : 1);
