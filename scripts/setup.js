#!/usr/bin/env node
// The set-up both quick-start commands run first (as predemo / pretest), so each works on a fresh
// clone by itself: dependencies, services, compiled code, and for the demo its own migrated database.
//   node scripts/setup.js test|demo|build
const fs = require('fs');
const path = require('path');
const { execSync } = require('child_process');
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

async function main() {
  ensureDependencies();
  if (mode === 'build') {
    sh('npx tsc -p tsconfig.build.json');
    return;
  }
  await ensureServices();
  if (mode === 'test') {
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
