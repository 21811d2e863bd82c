/**
 * Allowance-state latency under ingest: `npm run bench -- allowance [--subscriptions 10000]
 * [--events 1000000] [--rps 500] [--ingest 20000] [--seconds 30]`.
 *
 * On `closebook_bench_allowance` (dropped, recreated, migrated) it starts the compiled API and a
 * worker as child processes, creates the demo's catalog and `--subscriptions` subscriptions through
 * the API, generates `--events` events in the current month (set-based SQL) and lets the worker roll
 * them up. Then, for `--seconds`, this process paces two open-loop load generators against the API:
 * `GET /v1/customers/{id}/subscriptions/{sub}/allowance-state` for random subscriptions at `--rps`
 * requests/s, and `POST /v1/events` at `--ingest` events/s (batches of 1,000, pre-serialised). A
 * read's latency runs from the instant it was scheduled (so a stalled server counts the wait), and
 * from when it was sent. Results: bench/results/allowance.json and a line in allowance.md.
 *
 * Before the load, `--sequential N` (default 200) reads one at a time, after one warm-up read of
 * each path, measure the cost of one read with nothing else running: first while every pair is dirty (the worker is not started yet, so
 * the answers are `live`), then from the stored rollups; the API process's CPU time over each loop
 * (from /proc) divided by the reads is the CPU per read. `--sequential-only 1` stops there;
 * `--cpu-prof 1` runs the API under `node --cpu-prof` (profiles in bench/results/cpu-prof/).
 */
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { Api, benchUrl, clearRedisPrefix, fmt, freshDatabase, generateEvents, hostInfo, numberFlags, REDIS_URL, seconds, seedCatalog, seedSubscriptions, utcMonth } from './lib/fixture';
import { createOrganization, freePort, HttpClient, startChild, stopChild } from './lib/processes';

const ROOT = join(__dirname, '..', '..');
const RESULTS = join(ROOT, 'bench', 'results');
const log = (msg: string) => console.log(`[bench:allowance] ${msg}`);

/** User + system CPU time of a process so far, in ms (Linux /proc; clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // After the command name: state is field 3, utime field 14 and stime field 15 (1-based).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** `n` reads one at a time (after one warm-up read of each path): latency percentiles, API CPU per read, sources. */
async function sequentialReads(http: HttpClient, paths: string[], key: string, n: number, apiPid: number) {
  for (const path of paths.slice(0, 1000)) await http.raw('GET', path, key);
  const lat: number[] = [];
  const sources: Record<string, number> = {};
  const cpu0 = cpuMsOf(apiPid);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const path = paths[Math.floor(Math.random() * paths.length)];
    const s = performance.now();
    const r = await http.raw('GET', path, key);
    lat.push(performance.now() - s);
    if (r.status !== 200) throw new Error(`allowance-state answered ${r.status}: ${r.text.slice(0, 300)}`);
    const src = /"source":"([a-z]+)"/.exec(r.text)?.[1] ?? 'unknown';
    sources[src] = (sources[src] ?? 0) + 1;
  }
  const wall = performance.now() - t0;
  const cpu = cpuMsOf(apiPid) - cpu0;
  lat.sort((a, b) => a - b);
  return { reads: n, p50_ms: pct(lat, 0.5), p99_ms: pct(lat, 0.99), api_cpu_ms_per_read: +(cpu / n).toFixed(2), wall_ms_per_read: +(wall / n).toFixed(2), sources, load_avg_1m: hostInfo().load_avg_1m };
}

interface Phase {
  http: HttpClient;
  paths: string[];
  support: string;
  ingestKey: string;
  bodies: Buffer[];
  rps: number;
  ingestRate: number;
  seconds: number;
}

/** Reads at `rps` and ingest batches of 1,000 at `ingestRate` events/s, open loop, at most 128 reads and 16 batches in flight (more are counted as dropped). */
async function loadPhase(p: Phase) {
  const fromScheduled: number[] = [];
  const fromSent: number[] = [];
  const ingestLat: number[] = [];
  const sources: Record<string, number> = {};
  let readErrors = 0;
  let ingestErrors = 0;
  let accepted = 0;
  let inflightReads = 0;
  let inflightIngest = 0;
  let dropped = 0;
  let skippedIngest = 0;
  const pending: Promise<unknown>[] = [];
  const batchesPerS = p.ingestRate / 1000;
  const totalBatches = Math.min(p.bodies.length, Math.ceil(batchesPerS * p.seconds));
  const start = performance.now();
  const end = start + p.seconds * 1000;
  let reads = 0;
  let batches = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const t = performance.now();
      while (reads < p.rps * p.seconds && start + (reads * 1000) / p.rps <= t) {
        const scheduled = start + (reads * 1000) / p.rps;
        const path = p.paths[Math.floor(Math.random() * p.paths.length)];
        reads++;
        if (inflightReads >= 128) {
          dropped++;
          continue;
        }
        inflightReads++;
        const sent = performance.now();
        pending.push(
          p.http.raw('GET', path, p.support)
            .then((r) => {
              const done = performance.now();
              if (r.status !== 200) {
                readErrors++;
                return;
              }
              fromScheduled.push(done - scheduled);
              fromSent.push(done - sent);
              const src = /"source":"([a-z]+)"/.exec(r.text)?.[1] ?? 'unknown';
              sources[src] = (sources[src] ?? 0) + 1;
            })
            .catch(() => readErrors++)
            .finally(() => inflightReads--),
        );
      }
      while (batches < totalBatches && start + (batches * 1000) / batchesPerS <= t) {
        const body = p.bodies[batches++];
        if (inflightIngest >= 16) {
          skippedIngest++;
          continue;
        }
        inflightIngest++;
        const sent = performance.now();
        pending.push(
          p.http.raw('POST', '/v1/events', p.ingestKey, body)
            .then((r) => {
              ingestLat.push(performance.now() - sent);
              if (r.status !== 200) ingestErrors++;
              else accepted += JSON.parse(r.text).accepted as number;
            })
            .catch(() => ingestErrors++)
            .finally(() => inflightIngest--),
        );
      }
      if (t >= end) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const elapsed = (performance.now() - start) / 1000;
  // What is still in flight gets 30 s more; anything later counts as timed out.
  const drained = await Promise.race([Promise.all(pending).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 30_000))]);
  const timedOut = drained ? 0 : inflightReads;
  fromScheduled.sort((a, b) => a - b);
  fromSent.sort((a, b) => a - b);
  ingestLat.sort((a, b) => a - b);
  return {
    reads: {
      scheduled: reads,
      ok: fromScheduled.length,
      errors: readErrors,
      dropped,
      timed_out: timedOut,
      achieved_rps: Math.round(fromScheduled.length / elapsed),
      from_scheduled_ms: { p50: pct(fromScheduled, 0.5), p90: pct(fromScheduled, 0.9), p99: pct(fromScheduled, 0.99), max: pct(fromScheduled, 1) },
      from_sent_ms: { p50: pct(fromSent, 0.5), p90: pct(fromSent, 0.9), p99: pct(fromSent, 0.99), max: pct(fromSent, 1) },
      sources,
    },
    ingest: {
      batches_sent: ingestLat.length,
      batches_skipped_backpressure: skippedIngest,
      errors: ingestErrors,
      accepted,
      achieved_events_per_s: Math.round(accepted / elapsed),
      batch_ms: { p50: pct(ingestLat, 0.5), p99: pct(ingestLat, 0.99) },
    },
  };
}

const pct = (xs: number[], p: number) => (xs.length ? +xs[Math.min(xs.length - 1, Math.floor(p * xs.length))].toFixed(2) : null);

export async function main(argv: string[]) {
  const o = numberFlags(argv, { subscriptions: 10_000, events: 1_000_000, rps: 500, ingest: 20_000, seconds: 30, sequential: 200, sequentialOnly: 0, cpuProf: 0 });
  const url = benchUrl('allowance');
  const prefix = 'cbbench_allowance';
  log(`database closebook_bench_allowance: ${fmt(o.subscriptions)} subscriptions, ${fmt(o.events)} events this month; ${o.rps} reads/s with ${fmt(o.ingest)} events/s for ${o.seconds} s`);
  await freshDatabase(url);
  await clearRedisPrefix(prefix);
  const port = await freePort();
  // Many sockets: the load phases keep up to 128 reads and 16 batches in flight.
  const http = new HttpClient(port, 256);
  const env = { ...process.env, DATABASE_URL: url, REDIS_URL, QUEUE_PREFIX: prefix, PORT: String(port), LOG_LEVEL: 'warn', NODE_ENV: 'production' };
  let api: ChildProcess | null = null;
  let worker: ChildProcess | null = null;
  try {
    const { orgId, adminKey } = await createOrganization(url, 'Bench allowance');
    const profDir = join(RESULTS, 'cpu-prof');
    if (o.cpuProf) mkdirSync(profDir, { recursive: true });
    api = startChild('api', env, o.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
    const base = `http://127.0.0.1:${port}/v1`;
    await http.waitHealthy(api);
    const admin = new Api(base, adminKey);
    const keyOf = async (role: string) => (await admin.post('/api-keys', { role, name: `bench ${role}` })).api_key as string;
    const finance = admin.with(await keyOf('finance'));
    const support = await keyOf('support');
    const ingestKey = await keyOf('ingest');
    await seedCatalog(finance);
    const now = new Date();
    const monthStart = utcMonth(now.getUTCFullYear(), now.getUTCMonth());
    const t0 = process.hrtime.bigint();
    const { subscriptions } = await seedSubscriptions(finance, o.subscriptions, monthStart, log);
    log(`${fmt(subscriptions.length)} subscriptions through the API in ${seconds(t0).toFixed(1)} s`);
    const gen = await generateEvents(url, orgId, monthStart, new Date(Date.now() - 120_000), o.events, log, 'pre_');
    log(`${fmt(o.events)} events generated in ${gen.seconds.toFixed(1)} s`);
    const paths = subscriptions.map((s) => `/v1/customers/${s.customer}/subscriptions/${s.id}/allowance-state`);
    // Every pair is dirty until the worker runs: these answers are recomputed live.
    const sequentialLive = await sequentialReads(http, paths, support, o.sequential, api.pid!);
    log(`one read at a time, pairs dirty: ${JSON.stringify(sequentialLive)}`);
    log('the worker rolls them up…');
    worker = startChild('worker', env);
    const pg = new Client({ connectionString: url });
    await pg.connect();
    const t1 = process.hrtime.bigint();
    let dirty = -1;
    for (;;) {
      dirty = (await pg.query('select count(*)::int as n from usage_rollup_dirty where organization_id = $1', [orgId])).rows[0].n;
      if (dirty === 0 || seconds(t1) > 900) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    log(`rollups caught up in ${seconds(t1).toFixed(1)} s (${dirty} pairs still dirty)`);
    const sequentialStored = await sequentialReads(http, paths, support, o.sequential, api.pid!);
    log(`one read at a time, from the rollups: ${JSON.stringify(sequentialStored)}`);
    if (o.sequentialOnly) {
      await pg.end();
      return { sequential: { live: sequentialLive, rollups: sequentialStored } };
    }

    // Pre-serialised ingest batches: 1,000 events each, random customers, timestamps just behind now.
    const batchSize = 1000;
    const batchesPerS = o.ingest / batchSize;
    const totalBatches = Math.ceil(batchesPerS * o.seconds);
    const env2 = ['production', 'preview'];
    const bodies: Buffer[] = [];
    const stamp = new Date(Date.now() - 30_000).toISOString();
    for (let b = 0; b < totalBatches; b++) {
      const events = [];
      for (let i = 0; i < batchSize; i++) {
        const c = subscriptions[Math.floor(Math.random() * subscriptions.length)].customer;
        events.push({ event_id: `load_${b}_${i}`, customer_id: c, event_name: 'api.requests', timestamp: stamp, properties: { environment: env2[i % 2], count: 1 + (i % 7) } });
      }
      bodies.push(Buffer.from(JSON.stringify({ events })));
    }

    // Phase 1: reads alone (a third of the time); phase 2: reads while ingest runs.
    const readsOnly = await loadPhase({ http, paths, support, ingestKey, bodies: [], rps: o.rps, ingestRate: 0, seconds: Math.max(5, Math.round(o.seconds / 3)) });
    log(`reads alone: ${JSON.stringify(readsOnly.reads)}`);
    const mixed = await loadPhase({ http, paths, support, ingestKey, bodies, rps: o.rps, ingestRate: o.ingest, seconds: o.seconds });
    log(`reads with ingest: ${JSON.stringify(mixed)}`);
    const version = (await pg.query('show server_version')).rows[0].server_version as string;
    await pg.end();
    const result = {
      benchmark: 'allowance',
      at: new Date().toISOString(),
      host: { ...hostInfo(), postgres: version },
      options: o,
      setup: { events_generated_s: +gen.seconds.toFixed(1), rollup_catch_up_s: +seconds(t1).toFixed(1) },
      sequential: { live: sequentialLive, rollups: sequentialStored },
      reads_alone: readsOnly.reads,
      reads: mixed.reads,
      ingest: mixed.ingest,
      target: { p99_ms: 15, met: (mixed.reads.from_scheduled_ms.p99 ?? Infinity) < 15 && mixed.reads.dropped === 0 && mixed.reads.timed_out === 0 },
    };
    if (!existsSync(RESULTS)) mkdirSync(RESULTS, { recursive: true });
    writeFileSync(join(RESULTS, 'allowance.json'), `${JSON.stringify(result, null, 2)}\n`);
    const md = join(RESULTS, 'allowance.md');
    if (!existsSync(md)) {
      writeFileSync(md, '# Allowance state under ingest (`npm run bench -- allowance`)\n\n| date | host | subscriptions | target reads/s, events/s | achieved reads/s, events/s | reads alone p50 / p99 | with ingest p50 / p99 (from scheduled) | with ingest p50 / p99 (from sent) | dropped / timed out | sources | ingest batch p50 / p99 |\n|---|---|---|---|---|---|---|---|---|---|---|\n');
    }
    const r = result.reads;
    const line = `| ${result.at.slice(0, 16).replace('T', ' ')} | ${result.host.cpus} cpu, PG ${version.split(' ')[0]}, load ${result.host.load_avg_1m} | ${fmt(o.subscriptions)} | ${o.rps}, ${fmt(o.ingest)} | ${r.achieved_rps}, ${fmt(result.ingest.achieved_events_per_s)} | ${readsOnly.reads.from_scheduled_ms.p50} / ${readsOnly.reads.from_scheduled_ms.p99} ms | ${r.from_scheduled_ms.p50} / ${r.from_scheduled_ms.p99} ms | ${r.from_sent_ms.p50} / ${r.from_sent_ms.p99} ms | ${r.dropped} / ${r.timed_out} | ${Object.entries(r.sources).map(([k, v]) => `${k} ${v}`).join(', ')} | ${result.ingest.batch_ms.p50} / ${result.ingest.batch_ms.p99} ms |`;
    appendFileSync(md, `${line}\n`);
    log(`wrote bench/results/allowance.json and a line in bench/results/allowance.md:\n${line}`);
    return result;
  } finally {
    http.close();
    await stopChild(worker);
    await stopChild(api);
    await clearRedisPrefix(prefix).catch(() => undefined);
  }
}
