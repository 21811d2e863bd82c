import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import { MultiBar, Presets } from 'cli-progress';
import { Money } from '@closebook/money';
import { OrganizationsService } from '@closebook/platform';
import { PeriodEndFlows } from '@closebook/invoicing';
import { createApiApp } from '../../../api/src/create-app';
import { DEMO_CURRENCY, PLAN_MIX, PLANS, PRODUCTS } from './demo-catalog';
import { makeCustomers, monthEvents, type DemoCustomer } from './demo-traffic';
import { DemoClient, pool } from './demo-client';

export interface DemoOptions {
  customers: number;
  /** Mean events per month of a size-1 customer (≈ 1,000,000 events over two months by default). */
  eventsPerCustomer: number;
  progress: boolean;
}

const utcMonth = (y: number, m: number) => new Date(Date.UTC(y, m, 1));
const ym = (d: Date) => d.toISOString().slice(0, 7);
const usd = (amount: string) => Money.of(amount, DEMO_CURRENCY).round().format();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `rel` in `dir` or its nearest ancestor that has it. */
function findUp(dir: string, rel: string): string | null {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, rel))) return join(d, rel);
    if (dirname(d) === d) return null;
  }
}

/**
 * The main job: a whole two-month cycle of a usage-priced SaaS through the real API (in this
 * process) and the real worker (its own process): catalog, customers and subscriptions, a million usage events, both
 * month-ends (rollups, rating, drafts, finalization), on-demand charges, a late event, upgrades
 * (conversions) and downgrades in the current month, and a report of what it all produced.
 */
export class DemoRun {
  private api!: INestApplication;
  private worker: { stop(): Promise<void> } | null = null;
  private stopping = false;
  private orm!: MikroORM;
  private bars: MultiBar | null = null;
  private readonly started = Date.now();
  private readonly log: string[] = [];

  constructor(private readonly opts: DemoOptions) {}

  private say(line: string) {
    if (this.bars) this.bars.log(`${line}\n`);
    else console.log(line);
  }

  private step(title: string) {
    this.say(`\n▸ ${title}  (${((Date.now() - this.started) / 1000).toFixed(1)} s)`);
  }

  private bar(total: number, label: string) {
    if (!this.opts.progress) return { increment: (_n = 1) => undefined, stop: () => undefined };
    this.bars ??= new MultiBar({ format: ' {label} |{bar}| {value}/{total} {unit}  {duration_formatted}', hideCursor: true, clearOnComplete: false }, Presets.shades_classic);
    const b = this.bars.create(total, 0, { label: label.padEnd(26), unit: '' });
    return {
      increment: (n = 1) => b.increment(n),
      stop: () => {
        b.stop();
        this.bars?.stop();
        this.bars = null;
      },
    };
  }

  async run(): Promise<void> {
    this.api = await createApiApp({ logger: false });
    await this.api.listen(0, '127.0.0.1');
    const base = (await this.api.getUrl()).replace('[::1]', '127.0.0.1');
    this.orm = this.api.get<MikroORM>(MikroORM);
    try {
      await this.cycle(`${base}/v1`);
    } finally {
      this.stopping = true;
      await this.worker?.stop();
      await this.api.close();
    }
  }

  /**
   * The worker starts once the set-up is recorded: its schedulers run on the real clock, so they rate
   * the replayed past months as soon as it starts, and charges recorded after a draft go to the next invoice.
   * It is its own process (the compiled `npm run start:worker`), as deployed: rating and rollups run
   * beside the API on the machine's other core instead of sharing this process's event loop.
   */
  private async startWorker() {
    const entry = findUp(__dirname, join('scripts', 'start.js'));
    if (!entry) throw new Error('scripts/start.js not found: run the demo with `npm run demo`');
    // Its errors (JSON log lines) are shown; warnings stay out of the report.
    const child = spawn(process.execPath, [entry, 'worker'], { env: { ...process.env, LOG_LEVEL: 'error' }, stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    this.worker = {
      stop: async () => {
        if (child.exitCode === null) child.kill('SIGTERM');
        await exited;
      },
    };
    void exited.then((code) => {
      if (!this.stopping) this.say(`  the worker process exited (code ${code}) before the demo finished`);
    });
  }

  private async cycle(baseUrl: string) {
    const now = new Date();
    const m1 = utcMonth(now.getUTCFullYear(), now.getUTCMonth() - 2);
    const m2 = utcMonth(now.getUTCFullYear(), now.getUTCMonth() - 1);
    const m3 = utcMonth(now.getUTCFullYear(), now.getUTCMonth());

    this.step('Organization and API keys');
    const { organization, adminKey } = await this.api.get(OrganizationsService).createWithAdminKey(this.orm.em.fork(), 'Acme Developer Cloud');
    await this.orm.em.getConnection().execute('update organizations set draft_window_minutes = 60 where id = ?', [organization.id]);
    const admin = new DemoClient(baseUrl, adminKey.apiKey);
    const keyOf = async (role: string) => (await admin.post('/api-keys', { role, name: `demo ${role}` })).api_key as string;
    const finance = admin.withKey(await keyOf('finance'));
    const ingest = admin.withKey(await keyOf('ingest'));
    const support = admin.withKey(await keyOf('support'));
    this.say(`  organization ${organization.id}; keys: admin, finance, ingest, support`);

    this.step('Catalog: 11 products, 4 plans (Hobby capped free tier, Pro monthly/yearly, Team per-seat)');
    for (const p of PRODUCTS) await finance.post('/products', p);
    for (const { plan, version } of PLANS) {
      await finance.post('/plans', plan);
      await finance.post(`/plans/${plan.key}/versions`, version);
    }
    this.say(`  products: ${PRODUCTS.map((p) => p.key).join(', ')}`);
    this.say(`  plans: ${PLANS.map((p) => `${p.plan.key} (${p.plan.interval})`).join(', ')}`);

    this.step(`Customers and subscriptions from ${ym(m1)}`);
    const customers = makeCustomers(this.opts.customers, PLAN_MIX);
    const subs = new Map<string, string>();
    let bar = this.bar(customers.length, 'customers + subscriptions');
    await pool(
      customers,
      8,
      async (c) => {
        await finance.post('/customers', { external_id: c.externalId, name: `Customer ${c.index}`, currency: DEMO_CURRENCY, tax_rate: c.index % 4 === 0 ? '0.2' : '0' });
        // One in ten starts mid-month: a prorated first period.
        const start = c.index % 10 === 3 ? new Date(m1.getTime() + (9 + (c.index % 7)) * 86_400_000) : m1;
        const body: Record<string, unknown> = { plan_key: c.plan, seats: c.seats, started_at: start.toISOString() };
        if (c.plan === 'pro' && c.index % 5 === 0) body.addons = [{ product_key: 'sso' }];
        const sub = await finance.post(`/customers/${c.externalId}/subscriptions`, body);
        subs.set(c.externalId, sub.id);
      },
      () => bar.increment(),
    );
    bar.stop();
    const byPlan = Object.entries(customers.reduce<Record<string, number>>((acc, c) => ({ ...acc, [c.plan]: (acc[c.plan] ?? 0) + 1 }), {}));
    this.say(`  ${customers.length} customers: ${byPlan.map(([p, n]) => `${n} ${p}`).join(', ')}`);

    this.step(`On-demand charges in ${ym(m2)} (consulting at $150/h, incident response $100)`);
    const consulting = customers.filter((c) => c.plan !== 'hobby').slice(0, 5);
    for (const c of consulting) {
      await finance.post(`/subscriptions/${subs.get(c.externalId)}/charges`, { description: 'Consulting (hours)', quantity: '3', unit_amount: '150', date: new Date(m2.getTime() + 12 * 86_400_000).toISOString(), product_key: 'consulting' });
      await finance.post(`/subscriptions/${subs.get(c.externalId)}/charges`, { description: 'Incident response', quantity: '1', unit_amount: '100', date: new Date(m2.getTime() + 20 * 86_400_000).toISOString() });
    }
    this.say(`  ${consulting.length * 2} charges for ${consulting.length} customers`);

    // The worker starts once the first month's usage is stored: its period-end scheduler runs on the
    // real clock and rates the replayed past months at once, so starting it earlier would only rate
    // them without their usage and re-rate every draft as the events arrive.
    const ingested = { accepted: 0, duplicates: 0, rejected: 0 };
    await this.ingestMonth(ingest, customers, m1, m2, 11, ingested, async () => {
      this.step('Worker started (rollups, period-end flows, finalization, webhooks)');
      await this.startWorker();
    });
    await this.monthEnd(finance, m2, ym(m1));

    await this.ingestMonth(ingest, customers, m2, m3, 12, ingested);

    this.step(`A late event for ${ym(m1)}, after its invoices were finalized`);
    const late = customers.find((c) => c.plan === 'pro')!;
    const lateAnswer = await ingest.post('/events', {
      events: [{ event_id: `evt_late_${late.externalId}`, customer_id: late.externalId, event_name: 'api.requests', timestamp: new Date(m2.getTime() - 3_600_000).toISOString(), properties: { environment: 'production', count: 2_000_000 } }],
    });
    this.say(`  accepted ${lateAnswer.accepted}: 2,000,000 production API calls on ${ym(m1)}'s last day for ${late.externalId}`);

    await this.monthEnd(finance, m3, ym(m2));

    const closes = [await this.closeMonth(finance, admin, ym(m1))];

    this.step('A support dispute on an invoice line, resolved by finance with a credit note');
    const disputed = (await this.orm.em.getConnection().execute<{ invoice_id: string; line_id: string; amount: string }[]>(
      `select i.id as invoice_id, l.id as line_id, l.amount::text as amount from invoices i join invoice_lines l on l.invoice_id = i.id
        where i.status = 'finalized' and i.kind = 'period' and i.period_start >= ? and l.type = 'usage_overage' and l.amount > 10 order by l.amount desc limit 1`,
      [m2],
    ))[0];
    if (disputed) {
      const dispute = await support.post('/disputes', { invoice_id: disputed.invoice_id, invoice_line_id: disputed.line_id, reason: 'Customer says the overage includes a load test they were told would be free' });
      const resolved = await finance.post(`/exceptions/${dispute.id ?? dispute.exception?.id}/resolve`, { kind: 'corrected', note: 'Goodwill: half of the overage credited', credit_note: { amount: Money.of(disputed.amount, DEMO_CURRENCY).times('0.5').round().format(), reason: 'dispute: load test' } });
      this.say(`  dispute ${dispute.id ?? dispute.exception?.id} on line ${disputed.line_id} (${disputed.amount} ${DEMO_CURRENCY}) → ${resolved.status}, credit note ${resolved.evidence?.credit_note_id ?? '—'}`);
    } else this.say('  no overage line to dispute');

    closes.push(await this.closeMonth(finance, admin, ym(m2)));

    this.step(`Auditor workbook of ${ym(m2)} (background export job, streamed with exceljs)`);
    const auditor = admin.withKey(await keyOf('auditor'));
    const exp = await auditor.post('/exports', { kind: 'audit_workbook', period: ym(m2) });
    let done = exp;
    for (let i = 0; i < 6000 && !['done', 'failed'].includes(done.status); i++) {
      await sleep(100);
      done = await auditor.get(`/exports/${exp.id}`);
    }
    const [file] = await this.orm.em.getConnection().execute<{ file_path: string | null }[]>('select file_path from exports where id = ?', [exp.id]);
    this.say(`  export ${exp.id}: ${done.status}, ${Number(done.rows_written ?? 0).toLocaleString('en-US')} rows, ${Number(done.file?.size ?? 0).toLocaleString('en-US')} bytes`);
    this.say(`  file: ${file?.file_path ?? '—'} (also GET /v1/exports/${exp.id}/file)`);

    this.step(`Plan changes in ${ym(m3)}: upgrades (conversions from the free tier) and downgrades`);
    const upgrades = customers.filter((c) => c.plan === 'hobby').slice(0, 30);
    const downgrades = customers.filter((c) => c.plan === 'pro').slice(0, 10);
    await pool(upgrades, 4, (c) => finance.post(`/subscriptions/${subs.get(c.externalId)}/transition-plan`, { plan_key: 'pro' }));
    await pool(downgrades, 4, (c) => finance.post(`/subscriptions/${subs.get(c.externalId)}/transition-plan`, { plan_key: 'hobby' }));
    this.say(`  ${upgrades.length} hobby → pro (immediate, prorated), ${downgrades.length} pro → hobby (scheduled for period end)`);

    this.step('Close status of both closed months read by every role, after the plan changes of the next month');
    const readers: [string, DemoClient][] = [
      ['admin', admin],
      ['finance', finance],
      ['support', support],
      ['auditor', auditor],
    ];
    for (const c of closes) {
      let last: { state: string; closed: { by: string; at: string } | null; sign_offs: { given: { step: string; state: string }[] } } | null = null;
      for (let i = 0; i < 3; i++) for (const [, client] of readers) last = await client.get(`/periods/${c.period}/close`);
      this.say(
        `  ${c.period}: ${last?.state}${last?.closed ? ` by ${last.closed.by} at ${last.closed.at}` : ''}; sign-offs ${(last?.sign_offs.given ?? []).map((g) => `${g.step} ${g.state}`).join(', ') || 'none'} (after ${3 * readers.length} reads)`,
      );
    }

    await this.report({ finance, support, customers, subs, ingested, late, m1, m2 });
    for (const c of closes) this.say(`  close ${c.period}: ${c.closed ? 'CLOSED' : `not closed (${c.blockers.join(', ')})`}; checks ${c.checks}${c.closed && c.checks === 'failed' ? ' (each failure worked in its exception queue)' : ''}; exceptions opened ${c.opened}, resolved ${c.resolved}, waived ${c.waived}`);
    this.say(`\nDone in ${((Date.now() - this.started) / 1000).toFixed(1)} s.`);
  }

  /** The month's own books from its trial balance: revenue by account (credits − debits dated in it) and deferred revenue. */
  private async printBooks(finance: DemoClient, period: string) {
    const tb = await finance.get(`/ledger/trial-balance?period=${period}`);
    for (const c of tb.currencies as { currency: string; accounts: { code: string; name: string; debits: { amount: string }; credits: { amount: string }; closing: { amount: string } }[] }[]) {
      const net = (code: string) => {
        const a = c.accounts.find((x) => x.code === code);
        return a ? Money.parse(a.credits.amount, c.currency).minus(Money.parse(a.debits.amount, c.currency)) : Money.zero(c.currency);
      };
      const revenue = [
        ['subscription', '4000'],
        ['usage', '4100'],
        ['seats and add-ons', '4200'],
        ['services', '4300'],
        ['contra (credits)', '4900'],
      ].map(([label, code]) => `${label} ${net(code).format()}`);
      const deferred = c.accounts.find((x) => x.code === '2200');
      const closing = deferred ? Money.parse(deferred.closing.amount, c.currency).negated().format() : '0.00';
      this.say(`  ${period} books (${c.currency}, trial balance of the month): revenue ${revenue.join(', ')}; deferred revenue closing ${closing}`);
    }
  }

  /** Runs the reconciliation run of a month over HTTP and waits for it. */
  private async reconcile(finance: DemoClient, period: string) {
    const started = await finance.post(`/periods/${period}/reconciliation-runs`, {});
    let run = started;
    for (let i = 0; i < 6000 && !['passed', 'failed', 'error'].includes(run.status); i++) {
      await sleep(100);
      run = await finance.get(`/periods/${period}/reconciliation-runs/${started.id}`);
    }
    return run;
  }

  /** The close of a month as finance works it: month-end, reconciliation, the exception queues, sign-offs, close. */
  private async closeMonth(finance: DemoClient, admin: DemoClient, period: string) {
    this.step(`Close ${period}: month-end ledger work, reconciliation run, exception queues, sign-offs, close`);
    const me = await finance.post(`/periods/${period}/month-end`, {});
    this.say(`  month-end: ${me.recognition.entries_posted} recognition entries (${JSON.stringify(me.recognition.recognized)}), ${me.accruals.accrued} usage accruals (${JSON.stringify(me.accruals.amounts)}), ${me.late_usage.exceptions_created} late-usage exception(s)`);
    let run = await this.reconcile(finance, period);
    const summary = (r: { checks?: { check: string; status: string; failed?: number; population?: { count: number } | null }[] }) =>
      (r.checks ?? []).map((c) => `${c.check} ${c.status} [${c.population?.count ?? 0}]${c.failed ? ` (${c.failed} failed)` : ''}`).join(', ');
    this.say(`  run ${run.id}: ${run.status} — ${summary(run)}  ([n]: items of the month compared)`);
    const open: { id: string; type: string; title: string; queue_id: string }[] = [];
    for (let cursor: string | null = null, i = 0; i < 50; i++) {
      const page: { data: typeof open; next_cursor: string | null } = await finance.get(`/exceptions?period=${period}&status=open&limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      open.push(...page.data);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    let resolved = 0;
    let waived = 0;
    for (const e of open) {
      try {
        if (e.type === 'late_usage') await finance.post(`/exceptions/${e.id}/resolve`, { kind: 'corrected', note: 'Billed as an adjustment on the next invoice, with its original period' });
        else await finance.post(`/exceptions/${e.id}/resolve`, { kind: 'accepted', note: `Reviewed in the ${period} close: explained, no correction needed` });
        resolved++;
      } catch {
        await finance.post(`/exceptions/${e.id}/waive`, { note: `Waived in the ${period} close after review` });
        waived++;
      }
    }
    if (open.length) {
      this.say(`  exceptions worked: ${open.length} open (${[...new Set(open.map((e) => e.type))].join(', ')}) → ${resolved} resolved, ${waived} waived`);
      run = await this.reconcile(finance, period);
      this.say(`  re-run ${run.id}: ${run.status}`);
    }
    let status = await finance.get(`/periods/${period}/close`);
    const onlySignOffs = status.blockers.every((b: { code: string }) => b.code === 'sign_off_missing');
    let closed = false;
    if (onlySignOffs) {
      await finance.post(`/periods/${period}/sign-offs`, { step: 'preparer', note: 'Checks tied out; exceptions worked' });
      await admin.post(`/periods/${period}/sign-offs`, { step: 'reviewer', note: 'Reviewed' });
      const res = await finance.post(`/periods/${period}/close`, {});
      closed = res.ledger_status === 'closed';
      status = res;
      this.say(`  signed off by finance (preparer) and admin (reviewer); ${period} ${closed ? 'closed and locked' : 'not closed'}`);
      if (closed) await this.printBooks(finance, period);
    } else {
      for (const b of status.blockers) this.say(`  blocker ${b.code}: ${b.message}`);
    }
    return {
      period,
      closed,
      blockers: (status.blockers ?? []).map((b: { code: string }) => b.code),
      checks: run.status,
      opened: open.length,
      resolved,
      waived,
    };
  }

  private async ingestMonth(
    ingest: DemoClient,
    customers: DemoCustomer[],
    from: Date,
    until: Date,
    seed: number,
    totals: { accepted: number; duplicates: number; rejected: number },
    afterIngest?: () => Promise<void>,
  ) {
    this.step(`Usage events for ${ym(from)} through POST /v1/events`);
    const estimate = Math.round(customers.reduce((s, c) => s + Math.max(5, this.opts.eventsPerCustomer * c.size), 0));
    const bar = this.bar(estimate, `events ${ym(from)}`);
    const started = Date.now();
    let month = 0;
    const batches = monthEvents(customers, from, until, this.opts.eventsPerCustomer, 5000, seed);
    const inflight = new Set<Promise<void>>();
    for (const batch of batches) {
      const p = ingest.post('/events', { events: batch }).then((r) => {
        totals.accepted += r.accepted;
        totals.duplicates += r.duplicates;
        totals.rejected += r.rejected.length;
        month += batch.length;
        bar.increment(batch.length);
      });
      const tracked = p.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
      if (inflight.size >= 4) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    bar.stop();
    const secs = (Date.now() - started) / 1000;
    this.say(`  ${month.toLocaleString('en-US')} events in ${secs.toFixed(1)} s (${Math.round(month / secs).toLocaleString('en-US')}/s)`);
    // Fresh planner statistics after a bulk load, as autovacuum would gather a little later (the
    // demo replays two months in minutes; stale row estimates make the month's set-based SQL crawl).
    await this.orm.em.getConnection().execute('analyze');
    await afterIngest?.();
    await this.waitForRollups();
  }

  private async waitForRollups() {
    const conn = this.orm.em.getConnection();
    const started = Date.now();
    for (let i = 0; i < 3000; i++) {
      const [{ n }] = await conn.execute(`select count(*)::int as n from usage_rollup_dirty`);
      if (n === 0) break;
      await sleep(100);
    }
    const [{ rollups, events }] = await conn.execute(`select count(*)::int as rollups, coalesce(sum(event_count), 0)::bigint as events from usage_rollups`);
    this.say(`  rollups current: ${rollups} rollups covering ${Number(events).toLocaleString('en-US')} events (waited ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }

  /** Runs the period-end pipeline as its scheduler would at `at`, then finalizes the drafts. */
  private async monthEnd(finance: DemoClient, at: Date, label: string) {
    this.step(`Month-end ${label}: period-end flow (rating in batches), drafts, finalization`);
    const conn = this.orm.em.getConnection();
    const pending = async () =>
      Number((await conn.execute(`select count(*)::int as n from billing_periods bp where bp.period_end <= ? and not exists (select 1 from invoices i where i.billing_period_id = bp.id and i.kind = 'period')`, [at]))[0].n);
    const todo = await pending();
    const ratingStarted = Date.now();
    const bar = this.bar(todo, `rating ${label}`);
    await this.api.get(PeriodEndFlows).start(this.orm.em.fork(), new Date(at.getTime() + 5 * 60_000));
    let left = todo;
    for (let i = 0; i < 3000 && left > 0; i++) {
      await sleep(100);
      const now = await pending();
      bar.increment(left - now);
      left = now;
    }
    bar.stop();
    // The scheduler may already have drafted later periods (the demo replays past months faster than
    // the clock): those drafts stay open, re-rated as their usage arrives, and are finalized at their own month-end.
    const drafts = await conn.execute<{ id: string }[]>(
      `select id from invoices where status = 'draft' and kind in ('opening', 'period') and period_end <= ? order by created_at`,
      [at],
    );
    const rated = (Date.now() - ratingStarted) / 1000;
    const finalizingStarted = Date.now();
    const fbar = this.bar(drafts.length, `finalizing ${label}`);
    // Month-end finalization as finance runs it: one call finalizes a page of drafts, oldest period first per subscription.
    for (let i = 0; i < 100; i++) {
      const page = await finance.post('/invoices/finalize', { through: at.toISOString(), limit: 500 });
      fbar.increment(page.finalized);
      for (const f of page.failed) this.say(`  draft ${f.invoice_id} not finalized: ${f.code} — ${f.message}`);
      if (page.remaining === 0 || page.finalized === 0) break;
    }
    fbar.stop();
    const [{ n, total }] = await conn.execute(`select count(*)::int as n, coalesce(sum(total), 0)::text as total from invoices where kind = 'period' and status <> 'draft' and period_start < ?`, [at]);
    const finalized = (Date.now() - finalizingStarted) / 1000;
    this.say(`  ${todo} period invoices rated (${rated.toFixed(1)} s), ${drafts.length} drafts finalized (${finalized.toFixed(1)} s); period invoices to date: ${n}, ${usd(total)} ${DEMO_CURRENCY}`);
  }

  private async report(ctx: {
    finance: DemoClient;
    support: DemoClient;
    customers: DemoCustomer[];
    subs: Map<string, string>;
    ingested: { accepted: number; duplicates: number; rejected: number };
    late: DemoCustomer;
    m1: Date;
    m2: Date;
  }) {
    const conn = this.orm.em.getConnection();
    this.step('Report');
    const byKind = await conn.execute<{ kind: string; status: string; n: number; total: string }[]>(
      `select kind, status, count(*)::int as n, coalesce(sum(total), 0)::text as total from invoices group by 1, 2 order by 1, 2`,
    );
    this.say('  invoices:');
    for (const r of byKind) this.say(`    ${r.kind.padEnd(10)} ${r.status.padEnd(10)} ${String(r.n).padStart(5)}  ${usd(r.total).padStart(14)} ${DEMO_CURRENCY}`);
    const byType = await conn.execute<{ type: string; n: number; amount: string }[]>(
      `select l.type, count(*)::int as n, coalesce(sum(l.amount), 0)::text as amount
         from invoice_lines l join invoices i on i.id = l.invoice_id where i.status <> 'draft' group by 1 order by 1`,
    );
    this.say('  revenue by line type (finalized invoices):');
    for (const r of byType) this.say(`    ${r.type.padEnd(18)} ${String(r.n).padStart(6)} lines  ${usd(r.amount).padStart(14)} ${DEMO_CURRENCY}`);
    const lateRows = await ctx.finance.get('/late-usage');
    const [late] = await conn.execute(`select count(*)::int as n, coalesce(sum(amount), 0)::text as amount from late_usage where status = 'open'`);
    this.say(`  late usage awaiting finance (never billed silently): ${late.n} item(s) that would bill ${usd(late.amount)} ${DEMO_CURRENCY}`);
    for (const l of lateRows.data.slice(0, 3)) this.say(`    ${l.product_key} ${l.price_key || ''} +${l.quantity_delta} → ${l.amount?.amount} ${DEMO_CURRENCY} (${l.status})`);
    const sample = ctx.customers.find((c) => c.plan === 'team')!;
    const state = await ctx.support.get(`/customers/${sample.externalId}/subscriptions/${ctx.subs.get(sample.externalId)}/allowance-state`);
    this.say(`  allowance state now for ${sample.externalId} (team, ${sample.seats} seats):`);
    for (const d of state.dimensions ?? []) this.say(`    ${String(d.product_key).padEnd(14)} ${String(d.price_key ?? '').padEnd(11)} used ${d.used} of ${d.included} ${d.unit ?? ''} (${d.percent_used ?? '—'}%)`);
    const conversions = await ctx.finance.get('/analytics/conversions');
    this.say(`  conversions: ${JSON.stringify(conversions.data ?? conversions)}`);
    const [{ outbox }] = await conn.execute(`select count(*)::int as outbox from outbox_messages`);
    const outboxTypes = await conn.execute<{ type: string; n: number }[]>(`select type, count(*)::int as n from outbox_messages group by 1 order by 1`);
    this.say(`  webhook events written: ${outbox} (${outboxTypes.map((t) => `${t.type} ${t.n}`).join(', ')})`);
    this.say(`  events: ${ctx.ingested.accepted.toLocaleString('en-US')} accepted, ${ctx.ingested.duplicates} duplicates, ${ctx.ingested.rejected} rejected`);
  }
}

