// Checks that PostgreSQL and Redis answer, starts them when they are installed but stopped, and
// otherwise says exactly what is missing. Plain Node: it runs before dependencies are installed.
const net = require('net');
const fs = require('fs');
const { execSync } = require('child_process');

const DEFAULT_DATABASE_URL = 'postgresql://postgres@127.0.0.1:5432/closebook';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

function reachable(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function which(cmd) {
  try {
    execSync(`command -v ${cmd}`, { stdio: 'ignore', shell: '/bin/bash' });
    return true;
  } catch {
    return false;
  }
}

const isLocal = (host) => ['127.0.0.1', 'localhost', '::1'].includes(host);

const SERVICES = [
  {
    name: 'PostgreSQL',
    url: () => process.env.DATABASE_URL || DEFAULT_DATABASE_URL,
    defaultPort: 5432,
    canStart: () => which('pg_ctlcluster') && fs.existsSync('/etc/postgresql'),
    start: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    install: 'install PostgreSQL 15+ (Debian: apt-get install postgresql) or point DATABASE_URL at a server',
  },
  {
    name: 'Redis',
    url: () => process.env.REDIS_URL || DEFAULT_REDIS_URL,
    defaultPort: 6379,
    canStart: () => which('redis-server'),
    start:
      'mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
    install: 'install Redis 6.2+ (Debian: apt-get install redis-server) or point REDIS_URL at a server',
  },
];

async function ensureServices() {
  const missing = [];
  for (const svc of SERVICES) {
    const u = new URL(svc.url());
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || svc.defaultPort);
    if (await reachable(host, port)) continue;
    if (isLocal(host) && svc.canStart()) {
      console.log(`[setup] ${svc.name} is not answering on ${host}:${port}; starting it: ${svc.start}`);
      try {
        execSync(svc.start, { stdio: 'inherit', shell: '/bin/bash' });
      } catch (e) {
        console.log(`[setup] starting ${svc.name} failed: ${e.message}`);
      }
      for (let i = 0; i < 30 && !(await reachable(host, port)); i++) await new Promise((r) => setTimeout(r, 500));
      if (await reachable(host, port)) continue;
    }
    missing.push(`${svc.name} is not reachable at ${host}:${port}: ${isLocal(host) && !svc.canStart() ? svc.install : `start it (${svc.start})`}`);
  }
  if (missing.length) {
    console.error(`[setup] cannot continue:\n  - ${missing.join('\n  - ')}`);
    process.exit(1);
  }
}

module.exports = { ensureServices, DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL };
