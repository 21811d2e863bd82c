#!/usr/bin/env node
// The set-up both quick-start commands run first (as predemo / pretest), so each works on a fresh
// clone by itself: dependencies, services, compiled code, and for the demo its own migrated database.
//   node scripts/setup.js test|demo|build
const fs = require('fs');
const path = require('path');
const { execSync, spawnSync } = require('child_process');
const { ensureServices } = require('./lib/services');

const root = path.join(__dirname, '..');
const mode = process.argv[2] || 'build';

function sh(cmd) {
  execSync(cmd, { stdio: 'inherit', cwd: root, shell: '/bin/bash' });
}

function ensureDependencies() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  if (fs.existsSync(marker) && fs.statSync(marker).mtimeMs >= fs.statSync(lock).mtimeMs) return;
  // `npm install` with the committed lock, not `npm ci`: this registry omits other platforms' optional
  // binaries (@swc/core-darwin-*, …), which npm ci then reports as missing from any lock npm writes here.
  console.log('[setup] installing dependencies (npm install from package-lock.json)…');
  sh('npm install --no-audit --no-fund --loglevel=error');
}

// LibreOffice, for the tests that open the exported workbooks in a real spreadsheet application and
// check what its recalculated formulas give (test/helpers/libreoffice.ts). Without it (no root, no
// network) those tests skip with a message, so a failed install is reported and the set-up goes on.
const OFFICE = ['soffice', 'libreoffice'];
const OFFICE_PATHS = ['/usr/bin/soffice', '/usr/lib/libreoffice/program/soffice'];
const OFFICE_PACKAGE = 'libreoffice-calc-nogui';

function aptGet(...args) {
  return spawnSync('apt-get', args, { cwd: root, encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

function ensureOffice() {
  const onPath = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
  if (OFFICE.some(onPath) || OFFICE_PATHS.some((p) => fs.existsSync(p))) return;
  console.log(`[setup] installing LibreOffice (apt-get install ${OFFICE_PACKAGE})…`);
  const install = () => aptGet('install', '-y', '--no-install-recommends', OFFICE_PACKAGE);
  let r = install();
  // A fresh image may have no package lists yet: fetch them once, then try again.
  if (r.status !== 0 && /Unable to locate package|has no installation candidate/.test(`${r.stdout}${r.stderr}`)) {
    console.log('[setup] no package lists: apt-get update…');
    aptGet('update');
    r = install();
  }
  if (r.status === 0) return;
  const why = r.error ? r.error.message : (r.stderr || r.stdout || '').trim().split('\n').slice(-2).join(' ');
  console.log(`[setup] could not install LibreOffice (${why}); the tests that open workbooks in LibreOffice will be skipped. ` +
    `To run them: apt-get install -y --no-install-recommends ${OFFICE_PACKAGE} (as root).`);
}

async function main() {
  ensureDependencies();
  if (mode === 'build') {
    sh('npx tsc -p tsconfig.build.json');
    return;
  }
  await ensureServices();
  if (mode === 'test') {
    ensureOffice();
    // Compiles everything, tests included: type errors fail the run, and CLI tests run the compiled CLI.
    console.log('[setup] compiling and type-checking…');
    sh('npx tsc -p tsconfig.json');
    return;
  }
  if (mode === 'demo') {
    console.log('[setup] compiling…');
    sh('npx tsc -p tsconfig.build.json');
    return;
  }
  throw new Error(`unknown mode ${mode}`);
}

main().catch((e) => {
  console.error(`[setup] ${e.message}`);
  process.exit(1);
});
