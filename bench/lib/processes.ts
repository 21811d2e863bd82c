/**
 * For the benchmarks that run the compiled API and workers as child processes (ingest, export,
 * allowance, scale-out): ports, children, a keep-alive HTTP client, and an organization with its
 * admin key created straight in the database (the API's own set-up path).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { MikroORM } from '@mikro-orm/postgresql';
import { ApiKeysService, AuditService, buildOrmConfig, loadConfig, OrganizationsService, PLATFORM_ENTITIES } from '@closebook/platform';

const ROOT = join(__dirname, '..', '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { NODE_FLAGS } = require(join(ROOT, 'scripts', 'lib', 'node-flags.js')) as { NODE_FLAGS: string[] };

/** A TCP port nothing listens on right now (for a child API). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * `npm run start:api` / `start:worker` as a child process (compiled entry points), logs to ours. Given
 * the apps' V8 flags here, so `start.js` runs the app itself: the child's pid is the app's (CPU and
 * memory are read from it), not a launcher's.
 */
export function startChild(app: 'api' | 'worker', env: NodeJS.ProcessEnv, nodeArgs: string[] = []): ChildProcess {
  return spawn(process.execPath, [...NODE_FLAGS, ...nodeArgs, join(ROOT, 'scripts', 'start.js'), app], { env, stdio: ['ignore', 'inherit', 'inherit'] });
}

/** SIGTERM (the apps shut down gracefully) and wait for the exit. */
export async function stopChild(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
}

export interface HttpResult {
  status: number;
  body: any;
}

/**
 * A keep-alive HTTP client for one local API. `raw` leaves the answer as text (the load loops do
 * not parse what they do not read); `request` parses JSON when it is JSON.
 */
export class HttpClient {
  private agent: http.Agent;

  constructor(private readonly port: number, private readonly maxSockets = 64) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  raw(method: string, path: string, key: string | null, body?: Buffer | object): Promise<{ status: number; text: string }> {
    const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          agent: this.agent,
          headers: {
            ...(key ? { authorization: `Bearer ${key}` } : {}),
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  async request(method: string, path: string, key: string | null, body?: Buffer | object): Promise<HttpResult> {
    const { status, text } = await this.raw(method, path, key, body);
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    return { status, body: parsed };
  }

  /** `request`, and its JSON body when the status is the one expected (else an error naming `what`). */
  async expect(status: number, what: string, method: string, path: string, key: string | null, body?: Buffer | object): Promise<any> {
    const res = await this.request(method, path, key, body);
    if (res.status !== status) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** A fresh keep-alive pool: the server closes sockets idle for 5 s, and reusing one of those fails with EPIPE. */
  fresh(): void {
    this.agent.destroy();
    this.agent = new http.Agent({ keepAlive: true, maxSockets: this.maxSockets });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Until `GET /v1/health` answers 200 (60 s at most; the child exiting first is an error). */
  async waitHealthy(child: ChildProcess): Promise<void> {
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`the API exited with code ${child.exitCode}`);
      try {
        if ((await this.raw('GET', '/v1/health', null)).status === 200) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('the API did not become healthy in 60 s');
  }
}

/** An organization and its admin key, written through the platform's own service on `url`. */
export async function createOrganization(url: string, name: string): Promise<{ orgId: string; adminKey: string }> {
  const orm = await MikroORM.init(buildOrmConfig({ databaseUrl: url, poolMax: 2 }, PLATFORM_ENTITIES));
  try {
    const audit = new AuditService();
    const orgs = new OrganizationsService(loadConfig({ ...process.env, DATABASE_URL: url }), audit, new ApiKeysService(audit));
    const { organization, adminKey } = await orgs.createWithAdminKey(orm.em.fork(), name);
    return { orgId: organization.id, adminKey: adminKey.apiKey };
  } finally {
    await orm.close(true);
  }
}
