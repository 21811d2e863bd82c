#!/usr/bin/env node
// npm run bench -- <name> [options]: runs the compiled benchmark bench/<name>.ts (built by prebench).
// The benchmarks time the stages in this process as the worker runs them, so with the worker's V8 settings.
if (require('../scripts/lib/node-flags').relaunchWithNodeFlags()) return;
require('../scripts/register-paths');
const name = process.argv[2];
const benchmarks = {
  ingest: '../dist/bench/ingest.js',
  export: '../dist/bench/export.js',
  close: '../dist/bench/close.js',
  allowance: '../dist/bench/allowance.js',
  'scale-out': '../dist/bench/scale-out.js',
};
if (!benchmarks[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benchmarks).join('|')}> [options]`);
  process.exit(2);
}
require(benchmarks[name])
  .main(process.argv.slice(3))
  .then(() => process.exit(0))
  .catch((e) => {
    console.error(`[bench] ${e.stack || e.message}`);
    process.exit(1);
  });
