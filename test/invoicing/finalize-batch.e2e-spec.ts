// Month-end finalization in chunks (InvoicesService.finalizeThrough / finalizeDue → finalizeSet)
// against the single path (finalize, one invoice per transaction): two organizations built the same
// way, one finalized draft by draft, the other in one call, must end with the same numbers, ledger
// entries, deferral schedules, audit data and outbox payloads. Then: a refused draft in a chunk,
// an earlier draft left out, and the number of statements per chunk (it must not grow per invoice).
//
// September 2027 (30 days), so "now" can be chosen and no scheduler touches these periods first.
import type { EntityManager } from '@mikro-orm/postgresql';
import { RollupsService } from '@closebook/metering';
import {
  Invoice,
  InvoicesService,
  InvoicingEvents,
  PeriodRatingService,
  SubscriptionBillingService,
  UsageAccrualService,
  type FinalizedLine,
  type InvoicingPostingHook,
} from '@closebook/invoicing';
import { UnprocessableError } from '@closebook/platform';
import { BillingPeriodsService } from '@closebook/subscriptions';
import { DRAFT_CHECKS_SQL, FINALIZE_CHUNK } from '../../libs/billing/invoicing/src/invoices.service';
import { startApi, type TestApi } from '../helpers/api';
import { ingestCalls, sql, tenant, uid, type Tenant } from './fixtures';

const AUG = new Date(Date.UTC(2027, 7, 1));
const SEP = new Date(Date.UTC(2027, 8, 1));
const OCT = new Date(Date.UTC(2027, 9, 1));
const at = (day: number, hour = 12) => new Date(Date.UTC(2027, 8, day, hour));
const afterSep = new Date(Date.UTC(2027, 9, 1, 1));
/** When both organizations finalize. */
const NOW = new Date(Date.UTC(2027, 9, 1, 3));
const KIND_ORDER = `case kind when 'opening' then 0 when 'period' then 1 else 2 end`;

describe('month-end finalization in chunks', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  const em = () => api.orm.em.fork() as EntityManager;
  const invoices = () => api.app.get(InvoicesService);
  const rating = () => api.app.get(PeriodRatingService);

  /** Every statement sent to PostgreSQL while `fn` runs (nothing else talks to the database in this process meanwhile). */
  async function statements<T>(fn: () => Promise<T>): Promise<{ result: T; sql: string[] }> {
    const knex = api.orm.em.getConnection().getKnex();
    const seen: string[] = [];
    const on = (q: { sql: string }) => seen.push(q.sql);
    knex.on('query', on);
    try {
      return { result: await fn(), sql: seen };
    } finally {
      knex.removeListener('query', on);
    }
  }

  async function catalog(t: Tenant) {
    await t.product({ key: 'basic_fee', name: 'Basic fee', kind: 'recurring' });
    await t.product({ key: 'pro_fee', name: 'Pro fee', kind: 'recurring' });
    await t.product({ key: 'team_fee', name: 'Team fee', kind: 'recurring' });
    await t.product({ key: 'seats', name: 'Seats', kind: 'seat' });
    await t.product({ key: 'sso', name: 'SSO', kind: 'addon' });
    await t.product({ key: 'consulting', name: 'Consulting', kind: 'one_time' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('basic', [
      { product_key: 'basic_fee', price: { model: 'flat', amount: '20' } },
      { product_key: 'api_calls', allowance: '1000', price: { model: 'per_unit', unit_amount: '0.01' } },
    ]);
    await t.plan('pro', [
      { product_key: 'pro_fee', price: { model: 'flat', amount: '50' } },
      { product_key: 'sso', price: { model: 'flat', amount: '10' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    await t.plan('team', [
      { product_key: 'team_fee', price: { model: 'flat', amount: '30' } },
      { product_key: 'seats', included_seats: 1, price: { model: 'per_unit', unit_amount: '10' } },
    ]);
    await t.plan('free', [{ product_key: 'api_calls', allowance: '1000', overage: 'block', price: { model: 'per_unit', unit_amount: '0.01' } }]);
  }

  const ingest = (t: Tenant, customer: string, count: number, day: number, clock = at(30)) => ingestCalls(api, t, customer, count, at(day, 3), clock);

  async function periodOf(subscriptionId: string, start: Date) {
    const [row] = await sql<{ id: string }>(api, 'select id from billing_periods where subscription_id = ? and period_start = ?', [subscriptionId, start.toISOString()]);
    return row.id;
  }

  /** A tenant with four subscriptions (customers `${prefix}1`…`${prefix}4`) since August, August and September rated: 12 drafts. */
  async function fourRated(name: string, prefix: string) {
    const t = await tenant(api, name);
    await catalog(t);
    const subs = [];
    for (const n of [1, 2, 3, 4]) subs.push(await t.subscribe(`${prefix}${n}`, 'basic', { started_at: AUG }));
    for (const s of subs) {
      await rating().ratePeriod(em(), await periodOf(s.subscriptionId, AUG), new Date(Date.UTC(2027, 8, 1, 1)));
      await rating().ratePeriod(em(), await periodOf(s.subscriptionId, SEP), afterSep);
    }
    return { t, subs };
  }

  async function periodInvoiceOf(subscriptionId: string, start: Date): Promise<{ id: string }> {
    const [row] = await sql<{ id: string }>(api, "select id from invoices where subscription_id = ? and kind = 'period' and period_start = ?", [subscriptionId, start.toISOString()]);
    return row;
  }

  /** Runs `fn` while a posting hook refuses to finalize invoice `id` (a refusal inside the chunk, whatever its reason). */
  async function refusing<T>(id: string, fn: () => Promise<T>, seen: FinalizedLine[] = []): Promise<T> {
    const refuse: InvoicingPostingHook = {
      async invoiceFinalized(_tx, invoice, lines) {
        if (invoice.id === id) throw new UnprocessableError('refused_by_test', 'refused by the test');
        seen.push(...lines);
      },
    };
    const events = api.app.get(InvoicingEvents);
    events.register(refuse);
    try {
      return await fn();
    } finally {
      events.unregister(refuse);
    }
  }


  /**
   * The same organization every time: opening, period and transition drafts; usage with overage;
   * tax; a zero invoice; a negative one (a downgrade's credit); seats; an on-demand charge; September's
   * month-end accrual run (nothing to accrue: every period ends inside September); and a draft made stale
   * by late events after it was rated (finalization re-rates it).
   */
  async function organization(name: string) {
    const t = await tenant(api, name);
    await catalog(t);
    const billing = api.app.get(SubscriptionBillingService);
    const subs = {
      taxed: await t.subscribe('taxed', 'basic', { started_at: SEP, tax_rate: '0.2' }),
      upgrade: await t.subscribe('upgrade', 'basic', { started_at: SEP }),
      downgrade: await t.subscribe('downgrade', 'pro', { started_at: SEP, addons: [{ product_key: 'sso' }] }),
      free: await t.subscribe('free', 'free', { started_at: SEP }),
      team: await t.subscribe('team', 'team', { started_at: SEP, seats: 3, tax_rate: '0.1' }),
      late: await t.subscribe('late', 'basic', { started_at: SEP }),
    };
    await ingest(t, 'taxed', 5_000, 10);
    await ingest(t, 'upgrade', 3_000, 12);
    await ingest(t, 'free', 400, 5);
    await ingest(t, 'late', 1_500, 8);
    await billing.transition(em(), t.orgId, subs.upgrade.subscriptionId, { plan_key: 'pro' }, at(21));
    await billing.transition(em(), t.orgId, subs.downgrade.subscriptionId, { plan_key: 'basic', timing: 'immediate', proration_strategy: 'difference_immediately' }, at(21));
    const charge = await t.post(`/v1/subscriptions/${subs.team.subscriptionId}/charges`, { product_key: 'consulting', description: 'Setup, 2 h', quantity: '2', unit_amount: '150', date: at(15).toISOString() });
    if (charge.status !== 201) throw new Error(`charge: ${charge.status} ${JSON.stringify(charge.body)}`);
    for (const s of Object.values(subs)) await rating().ratePeriod(em(), await periodOf(s.subscriptionId, SEP), afterSep);
    // September's month-end: its periods end inside it and their invoices are dated in it, so nothing is accrued
    // (the reversal path of a crossing period is posting-rules.e2e-spec's; one invoice or many take the same hook).
    expect(await api.app.get(UsageAccrualService).accrue(em(), t.orgId, '2027-09')).toMatchObject({ accrued: 0 });
    // Late events for two drafts: finalization re-rates them first (together in a chunk).
    await ingest(t, 'late', 700, 20, afterSep);
    await ingest(t, 'taxed', 300, 22, afterSep);
    return { t, subs };
  }

  /** The drafts in the order the month-end path takes them: waves of each subscription's next draft, by subscription id. */
  async function waveOrder(orgId: string) {
    const rows = await sql<{ id: string; subscription_id: string }>(
      api,
      `select id, subscription_id from invoices where organization_id = ? and status = 'draft' order by subscription_id, period_start, ${KIND_ORDER}, created_at`,
      [orgId],
    );
    const groups = new Map<string, string[]>();
    for (const r of rows) groups.set(r.subscription_id, [...(groups.get(r.subscription_id) ?? []), r.id]);
    const out: string[] = [];
    for (let w = 0; out.length < rows.length; w++) for (const g of groups.values()) if (g[w]) out.push(g[w]);
    return out;
  }

  /** Invoice id → a name that is the same in two organizations built alike. */
  async function labels(orgId: string) {
    const rows = await sql<{ id: string; external_id: string; kind: string; period_start: string }>(
      api,
      'select i.id, c.external_id, i.kind, i.period_start from invoices i join customers c on c.id = i.customer_id where i.organization_id = ?',
      [orgId],
    );
    return new Map(rows.map((r) => [r.id, `${r.external_id}:${r.kind}:${new Date(r.period_start).toISOString()}`]));
  }

  /** Everything finalization wrote for an organization, with every id replaced by a name that is the same in both organizations. */
  async function books(orgId: string) {
    const names = new Map<string, string>();
    const customers = await sql<{ id: string; external_id: string }>(api, 'select id, external_id from customers where organization_id = ?', [orgId]);
    for (const c of customers) names.set(c.id, `customer:${c.external_id}`);
    const subscriptions = await sql<{ id: string; customer_id: string }>(api, 'select id, customer_id from subscriptions where organization_id = ?', [orgId]);
    for (const s of subscriptions) names.set(s.id, `subscription:${names.get(s.customer_id)}`);
    const periods = await sql<{ id: string; subscription_id: string; period_start: Date }>(api, 'select id, subscription_id, period_start from billing_periods where organization_id = ?', [orgId]);
    for (const p of periods) names.set(p.id, `period:${names.get(p.subscription_id)}:${new Date(p.period_start).toISOString()}`);
    const invs = await sql<Record<string, unknown> & { id: string; subscription_id: string; kind: string; period_start: Date; content_hash: string }>(
      api,
      `select id, subscription_id, kind, period_start, status, number, total::text as total, finalized_at, due_at, content_hash, rating_count
         from invoices where organization_id = ? order by number nulls last, id`,
      [orgId],
    );
    for (const i of invs) names.set(i.id, `invoice:${names.get(i.subscription_id)}:${i.kind}:${new Date(i.period_start).toISOString()}`);
    const lines = await sql<{ id: string; invoice_id: string; position: number }>(api, 'select id, invoice_id, position from invoice_lines where organization_id = ?', [orgId]);
    for (const l of lines) names.set(l.id, `line:${names.get(l.invoice_id)}:${l.position}`);
    const entries = await sql<{ id: string; key: string; reverses_entry_id: string | null }>(
      api,
      'select id, key, reverses_entry_id from journal_entries where organization_id = ? order by reverses_entry_id nulls first',
      [orgId],
    );
    const rename = (v: unknown) =>
      JSON.parse(JSON.stringify(v).replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (id) => names.get(id) ?? `unknown:${id === orgId ? 'org' : 'id'}`));
    for (const e of entries) names.set(e.id, `entry:${rename(e.key)}`);
    const hashes = new Map(invs.map((i) => [i.id, i.content_hash]));

    const ledger = await sql(
      api,
      `select e.key, e.entry_date::text as date, e.source_type, e.source_id, e.description, e.reverses_entry_id, e.corrects_period,
              json_agg(json_build_object('account', a.code, 'party', l.party_id, 'debit', l.debit::text, 'credit', l.credit::text) order by l.line_no) as lines
         from journal_entries e join journal_lines l on l.entry_id = e.id join ledger_accounts a on a.id = l.account_id
        where e.organization_id = ? group by e.id`,
      [orgId],
    );
    const schedules = await sql(
      api,
      `select key, source_type, source_id, description, total_minor::text as total, service_start::text as service_start, service_end::text as service_end,
              from_account, to_account, party_id, final_period, recognize_from::text as recognize_from
         from deferral_schedules where organization_id = ?`,
      [orgId],
    );
    const audit = await sql<{ resource_id: string; data: Record<string, unknown> }>(
      api,
      "select resource_id, data from audit_log where organization_id = ? and action = 'invoice.finalized'",
      [orgId],
    );
    const outbox = await sql<{ dedupe_key: string; payload: Record<string, unknown> }>(
      api,
      "select dedupe_key, payload from outbox_messages where organization_id = ? and type = 'invoice.finalized'",
      [orgId],
    );
    const invoiceLines = await sql(
      api,
      `select invoice_id, position, type, product_key, price_key, quantity::text as quantity, amount::text as amount, steps
         from invoice_lines where organization_id = ?`,
      [orgId],
    );
    const byName = <T>(rows: T[], name: (r: T) => string) => rows.map((r) => rename(r)).sort((a, b) => name(a).localeCompare(name(b)));
    return {
      invoices: byName(
        invs.map(({ content_hash: _h, subscription_id: _s, ...i }) => ({ ...i, period_start: new Date(i.period_start).toISOString(), finalized_at: i.finalized_at && new Date(i.finalized_at as string).toISOString(), due_at: i.due_at && new Date(i.due_at as string).toISOString() })),
        (i) => i.id as string,
      ),
      ledger: byName(ledger, (e) => e.key as string),
      schedules: byName(schedules, (s) => s.key as string),
      // The content hash names the subscription: checked against the invoice's own, then compared by name.
      audit: byName(
        audit.map((a) => ({ resource_id: a.resource_id, data: { ...a.data, content_hash: a.data.content_hash === hashes.get(a.resource_id) ? 'the invoice’s' : a.data.content_hash } })),
        (a) => a.resource_id,
      ),
      outbox: byName(outbox, (o) => o.dedupe_key),
      lines: byName(invoiceLines, (l) => `${l.invoice_id}:${String(l.position).padStart(4, '0')}`),
    };
  }

  it('finalizing a month in one call writes exactly what finalizing each draft on its own writes', async () => {
    const a = await organization('Batch vs single: one by one');
    const b = await organization('Batch vs single: one call');
    // A finalizes draft by draft in the order the month-end path takes B's (B's subscription ids decide it).
    const [labelsA, labelsB] = await Promise.all([labels(a.t.orgId), labels(b.t.orgId)]);
    const idInA = new Map([...labelsA].map(([id, label]) => [label, id]));
    const order = (await waveOrder(b.t.orgId)).map((id) => idInA.get(labelsB.get(id)!)!);
    expect(order.length).toBe(13); // 6 opening, 6 period, 1 transition (the upgrade's; the downgrade's difference is credited on its period invoice)

    // The chunk's staleness check and PeriodRatingService.isStale agree (one definition): only the draft with late events is stale.
    const periodDrafts = await em().find(Invoice, { organizationId: b.t.orgId, kind: 'period', status: 'draft' });
    for (const d of periodDrafts) await api.app.get(RollupsService).ensureFresh(em(), d.subscriptionId, d.periodStart);
    const checks = await em().execute<{ id: string; stale: boolean }[]>(DRAFT_CHECKS_SQL, [`{${periodDrafts.map((d) => d.id).join(',')}}`]);
    expect(checks).toHaveLength(periodDrafts.length);
    const stale = new Set(checks.filter((r) => r.stale).map((r) => r.id));
    for (const d of periodDrafts) expect(stale.has(d.id)).toBe(await rating().isStale(em(), d));
    expect([...stale].map((id) => labelsB.get(id)).sort()).toEqual([`late:period:${SEP.toISOString()}`, `taxed:period:${SEP.toISOString()}`]);

    const single = await statements(async () => {
      for (const id of order) expect((await invoices().finalize(em(), a.t.orgId, id, NOW)).transitioned).toBe(true);
    });
    const batch = await statements(() => invoices().finalizeThrough(em(), b.t.orgId, OCT, {}, NOW));
    expect(batch.result).toEqual({ finalized: 13, unchanged: 0, failed: [], remaining: 0 });

    const [ba, bb] = await Promise.all([books(a.t.orgId), books(b.t.orgId)]);
    expect(bb).toEqual(ba);
    // What is compared is there: every kind, tax, zero and negative totals, deferrals, a re-rating; each entry on its invoice's date.
    expect(ba.invoices.map((i) => `${i.kind} ${i.status}`).sort()).toEqual([...Array(6).fill('opening finalized'), ...Array(6).fill('period finalized'), 'transition finalized']);
    expect(ba.invoices.map((i) => i.number as string).sort()).toEqual(Array.from({ length: 13 }, (_, k) => `INV-${String(k + 1).padStart(6, '0')}`));
    expect(ba.invoices.some((i) => Number(i.total) === 0)).toBe(true);
    expect(ba.invoices.some((i) => String(i.total).startsWith('-'))).toBe(true);
    expect(ba.ledger.filter((e) => String(e.key).startsWith('invoice:')).every((e) => String(e.date).startsWith('2027-09'))).toBe(true);
    expect(ba.schedules.length).toBeGreaterThan(5);
    expect(ba.audit.filter((x) => (x.data as { rerated: boolean }).rerated)).toHaveLength(2);
    // The re-rated drafts carry the late usage: 1,500 + 700 and 5,000 + 300 calls.
    const usage = (who: string) => ba.lines.filter((l) => String(l.invoice_id).includes(`customer:${who}`) && String(l.invoice_id).includes(':period:') && l.product_key === 'api_calls').map((l) => l.quantity);
    expect(usage('late').sort()).toEqual(['1000', '1200']);
    expect(usage('taxed').sort()).toEqual(['1000', '4300']);
    expect(ba.outbox).toHaveLength(13);
    // Far fewer statements: a handful per chunk instead of a transaction's worth per invoice.
    if (process.env.FINALIZE_STATS) console.info(`statements: single ${single.sql.length}, batch ${batch.sql.length} for ${order.length} invoices`);
    expect(batch.sql.length).toBeLessThan(single.sql.length / 2);
  });

  it('numbers are gapless and in period order per subscription; a refused draft fails alone and its subscription waits', async () => {
    const { t, subs } = await fourRated('Batch refusal', 'r');
    // r2's August period invoice is refused inside the chunk (whatever the reason: here a posting hook).
    const refused = await periodInvoiceOf(subs[1].subscriptionId, AUG);
    const seen: FinalizedLine[] = [];
    const res = await refusing(refused.id, () => invoices().finalizeThrough(em(), t.orgId, OCT, {}, NOW), seen);
    // The hooks get each line's service period as instants, equal to the stored ones.
    const stored = new Map(
      (
        await sql<{ id: string; period_start: Date; period_end: Date; status: string }>(
          api,
          'select l.id, l.period_start, l.period_end, i.status from invoice_lines l join invoices i on i.id = l.invoice_id where l.organization_id = ?',
          [t.orgId],
        )
      ).map((l) => [l.id, l]),
    );
    // Every line of every invoice finalized was handed to the hooks (a chunk that rolled back hands some twice).
    expect([...stored.values()].filter((l) => l.status === 'finalized').every((l) => seen.some((x) => x.id === l.id))).toBe(true);
    for (const l of seen) {
      expect(l.periodStart).toBeInstanceOf(Date);
      expect(l.periodEnd).toBeInstanceOf(Date);
      expect([l.periodStart.getTime(), l.periodEnd.getTime()]).toEqual([new Date(stored.get(l.id)!.period_start).getTime(), new Date(stored.get(l.id)!.period_end).getTime()]);
    }
    expect(res).toEqual({ finalized: 10, unchanged: 0, failed: [{ invoice_id: refused.id, code: 'refused_by_test', message: 'refused by the test' }], remaining: 2 });
    const left = await sql<{ id: string; kind: string; period_start: Date }>(api, "select id, kind, period_start from invoices where organization_id = ? and status = 'draft'", [t.orgId]);
    expect(left.map((i) => i.id).sort()).toEqual([refused.id, (await periodInvoiceOf(subs[1].subscriptionId, SEP)).id].sort());
    // Then the rest, with no refusal.
    expect(await invoices().finalizeThrough(em(), t.orgId, OCT, {}, NOW)).toEqual({ finalized: 2, unchanged: 0, failed: [], remaining: 0 });
    const all = await sql<{ subscription_id: string; kind: string; period_start: Date; number: string }>(
      api,
      `select subscription_id, kind, period_start, number from invoices where organization_id = ? order by number`,
      [t.orgId],
    );
    expect(all.map((i) => i.number)).toEqual(Array.from({ length: 12 }, (_, k) => `INV-${String(k + 1).padStart(6, '0')}`));
    for (const s of subs) {
      const mine = all.filter((i) => i.subscription_id === s.subscriptionId);
      const byPeriod = [...mine].sort((x, y) => new Date(x.period_start).getTime() - new Date(y.period_start).getTime() || (x.kind === 'opening' ? -1 : y.kind === 'opening' ? 1 : 0));
      expect(mine.map((i) => i.number)).toEqual(byPeriod.map((i) => i.number));
    }
    // One outbox message and one audit entry per invoice.
    const [{ n, m }] = await sql<{ n: number; m: number }>(
      api,
      `select (select count(*)::int from outbox_messages where organization_id = ? and type = 'invoice.finalized') as n,
              (select count(*)::int from audit_log where organization_id = ? and action = 'invoice.finalized') as m`,
      [t.orgId, t.orgId],
    );
    expect({ n, m }).toEqual({ n: 12, m: 12 });
  });

  it('the scheduled run takes batch after batch until no draft is due, and leaves a failing subscription out of its later batches', async () => {
    const { t, subs } = await fourRated('Due in batches', 'd');
    // Due long ago, at an instant no other test's draft is due by: this run sees these 12 drafts alone.
    const dueBy = new Date(Date.UTC(2000, 0, 2));
    await sql(api, "update invoices set finalize_after = '2000-01-01T00:00:00Z' where organization_id = ?", [t.orgId]);
    // Drafts go by subscription id, then period (opening first): the refused August draft belongs to
    // the first subscription in that order, so every batch of the run would meet it again.
    const [s1] = [...subs].sort((a, b) => (a.subscriptionId < b.subscriptionId ? -1 : 1));
    const refused = await periodInvoiceOf(s1.subscriptionId, AUG);
    const [first, rest] = await refusing(refused.id, async () => [
      // A spent budget: one batch, and the run says more may be due. The batch: s1 opening, s1 August
      // (refused), s1 September (not tried: its subscription stopped), s2 opening and August.
      await invoices().finalizeDue(em(), dueBy, { batch: 5, budgetMs: 0 }),
      // The next run: s1 August (refused again: a run starts afresh), s1 September, s2 September, s3
      // opening and August; then, s1 left out, the last four. Without leaving s1 out, every batch
      // would try its August again (3 failures, 3 batches).
      await invoices().finalizeDue(em(), dueBy, { batch: 5 }),
    ]);
    expect(first).toEqual({ finalized: 3, failed: 1, batches: 1, more: true });
    expect(rest).toEqual({ finalized: 7, failed: 1, batches: 2, more: false });
    const left = await sql<{ id: string }>(api, "select id from invoices where organization_id = ? and status = 'draft'", [t.orgId]);
    expect(left.map((i) => i.id).sort()).toEqual([refused.id, (await periodInvoiceOf(s1.subscriptionId, SEP)).id].sort());
    // The next run, with the refusal gone, finishes the subscription.
    expect(await invoices().finalizeDue(em(), dueBy, { batch: 5 })).toEqual({ finalized: 2, failed: 0, batches: 1, more: false });
  });

  it('re-rating a draft re-rates each later draft of its subscription once, oldest first', async () => {
    const t = await tenant(api, 'Rerate chain');
    await catalog(t);
    const JUL = new Date(Date.UTC(2027, 6, 1));
    const s = await t.subscribe('chain', 'basic', { started_at: JUL });
    await api.app.get(BillingPeriodsService).ensureThrough(em(), s.subscriptionId, OCT);
    for (const [start, after] of [[JUL, new Date(Date.UTC(2027, 7, 1, 1))], [AUG, new Date(Date.UTC(2027, 8, 1, 1))], [SEP, afterSep]] as const) {
      await rating().ratePeriod(em(), await periodOf(s.subscriptionId, start), after);
    }
    const counts = async () =>
      (await sql<{ period_start: Date; rating_count: number }>(api, "select period_start, rating_count from invoices where subscription_id = ? and kind = 'period' order by period_start", [s.subscriptionId])).map(
        (r) => [new Date(r.period_start).toISOString().slice(0, 7), r.rating_count],
      );
    expect(await counts()).toEqual([['2027-07', 1], ['2027-08', 1], ['2027-09', 1]]);
    await em().transactional(async (tx) => {
      const july = await tx.findOneOrFail(Invoice, { subscriptionId: s.subscriptionId, kind: 'period', periodStart: JUL });
      await rating().rerate(tx as EntityManager, july, NOW);
    });
    // September is re-rated once, after August (it was re-rated twice when each later draft recursed).
    expect(await counts()).toEqual([['2027-07', 2], ['2027-08', 2], ['2027-09', 2]]);
  });

  it('a draft whose earlier period draft is still open is refused exactly as the single path refuses it', async () => {
    const t = await tenant(api, 'Batch earlier draft');
    await catalog(t);
    const s = await t.subscribe('e1', 'basic', { started_at: AUG });
    const other = await t.subscribe('e2', 'basic', { started_at: AUG });
    for (const x of [s, other]) {
      await rating().ratePeriod(em(), await periodOf(x.subscriptionId, AUG), new Date(Date.UTC(2027, 8, 1, 1)));
      await rating().ratePeriod(em(), await periodOf(x.subscriptionId, SEP), afterSep);
    }
    const period = async (sub: string, start: Date) =>
      (await sql<{ id: string }>(api, "select id from invoices where subscription_id = ? and kind = 'period' and period_start = ?", [sub, start.toISOString()]))[0].id;
    const aug = await period(s.subscriptionId, AUG);
    const sep = await period(s.subscriptionId, SEP);
    const single = await invoices()
      .finalize(em(), t.orgId, sep, NOW)
      .then(() => null, (e: UnprocessableError) => ({ invoice_id: sep, code: e.code, message: e.message }));
    expect(single).toMatchObject({ code: 'earlier_invoice_draft' });
    expect(single!.message).toContain(aug);
    // The chunk path with August's draft left out (as when its draft window has not passed): the
    // September draft is refused with the single path's error, the other subscription's is finalized.
    const rows = await sql(api, `select id, organization_id, subscription_id, kind, period_start from invoices where id in (?, ?)`, [sep, await period(other.subscriptionId, AUG)]);
    const res = await (invoices() as unknown as { finalizeInOrder: (em: EntityManager, rows: unknown[], c: number, now: Date) => Promise<unknown> }).finalizeInOrder(em(), rows, 1, NOW);
    expect(res).toEqual({ finalized: 1, unchanged: 0, failed: [single] });
  });

  it('a chunk takes a constant number of statements, whatever its number of invoices', async () => {
    async function run(n: number) {
      const t = await tenant(api, `Batch statements ${n}`);
      await catalog(t);
      for (let i = 0; i < n; i++) {
        const s = await t.subscribe(uid('c'), i % 2 ? 'basic' : 'team', { started_at: SEP, seats: 2, tax_rate: '0.1' });
        await rating().ratePeriod(em(), await periodOf(s.subscriptionId, SEP), afterSep);
      }
      // Everything else finalized first, so the call below is one chunk of period drafts.
      const openings = await sql<{ id: string }>(api, "select id from invoices where organization_id = ? and kind = 'opening'", [t.orgId]);
      for (const o of openings) await invoices().finalize(em(), t.orgId, o.id, NOW);
      const { result, sql: seen } = await statements(() => invoices().finalizeThrough(em(), t.orgId, OCT, {}, NOW));
      expect(result).toEqual({ finalized: n, unchanged: 0, failed: [], remaining: 0 });
      // The rollups' freshness is read once for the chunk (metering's stalePairsOf), before its transaction.
      expect(seen.filter((q) => /usage_rollup_periods|usage_rollup_dirty/.test(q))).toHaveLength(1);
      return seen;
    }
    const size = Math.min(FINALIZE_CHUNK, Number(process.env.FINALIZE_N ?? 24));
    const small = await run(3);
    const large = await run(size);
    if (process.env.FINALIZE_STATS) console.info(`statements per chunk: ${small.length} (3 invoices), ${large.length} (${size} invoices)\n${large.map((q) => q.slice(0, 100)).join('\n')}`);
    expect(large.length).toBe(small.length);
    expect(large.length).toBeLessThanOrEqual(25);
  });
});
