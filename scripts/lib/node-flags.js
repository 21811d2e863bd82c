// The V8 settings Closebook's long-running processes (API, worker, demo, benchmarks) run with.
//
// --max-semi-space-size=64 (MB; Node 20's default is 16): month-end work allocates a page's rows,
// JSON documents and Decimals by the hundred megabytes, nearly all short-lived. With the default
// young generation most of them outlived a scavenge or two and were copied or promoted; GC was
// 12–27 % of every stage's CPU in the close benchmark's profile, and the same close ran ~15 % faster
// with 64 MB (docs/scaling.md, "Process settings"). The cost is memory: up to ~3 × 64 MB more
// resident at peak per process.
const NODE_FLAGS = ['--max-semi-space-size=64'];

/** Whether this process already runs with every flag (on its command line or in NODE_OPTIONS). */
function hasNodeFlags() {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS || '').split(/\s+/)];
  return NODE_FLAGS.every((f) => given.some((g) => g.split('=')[0] === f.split('=')[0]));
}

/**
 * Runs this same script again under NODE_FLAGS, unless it already has them (or set its own values):
 * returns true when it did, and then this process only waits for that one and exits with its code.
 * Signals a supervisor sends to this process are passed on, so a graceful shutdown still reaches the app.
 */
function relaunchWithNodeFlags() {
  if (hasNodeFlags()) return false;
  const { spawn } = require('child_process');
  const child = spawn(process.execPath, [...NODE_FLAGS, ...process.execArgv, process.argv[1], ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  return true;
}

module.exports = { NODE_FLAGS, hasNodeFlags, relaunchWithNodeFlags };
