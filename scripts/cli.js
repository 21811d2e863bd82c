#!/usr/bin/env node
// Runs the compiled CLI (npm run cli -- <command>); `npm run build` (run as precli) compiles it.
require('./register-paths');
require('../dist/apps/cli/src/main.js');
