// The posting rules end to end (SPEC §5): documents made through the API post their entries in the
// same transaction; figures computed by hand in each test.
import type { EntityManager } from '@mikro-orm/postgresql';
import { dec } from '@closebook/money';
import { RevenueRecognitionService } from '@closebook/ledger';
import { UsageAccrualService } from '@closebook/invoicing';
import { startApi, type TestApi } from '../helpers/api';
import { monthStart, runPeriodEnd, sendAll, sql, startWorker, tenant, type InvoiceJson, type Tenant } from '../invoicing/fixtures';

const ym = (d: Date) => d.toISOString().slice(0, 7);
const today = () => new Date().toISOString().slice(0, 10);
const day = (d: Date) => d.toISOString().slice(0, 10);
/** The last day (YYYY-MM-DD) of the month starting at `monthStart`. */
const lastDayOf = (monthStart: Date) => new Date(Date.UTC(monthStart.getUTCFullYear(), monthStart.getUTCMonth() + 1, 0)).toISOString().slice(0, 10);
const addMonths = (d: Date, n: number) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, d.getUTCDate()));

interface EntryJson {
  id: string;
  key: string;
  date: string;
  source_type: string;
  source_id: string;
  reverses_entry_id: string | null;
  lines: { account_code: string; party_id: string | null; debit: { amount: string } | null; credit: { amount: string } | null }[];
}

/** An entry's lines as `code party? Dr|Cr amount`, sorted: easy to compare with figures written by hand. */
const shape = (e: EntryJson) =>
  e.lines
    .map((l) => `${l.account_code}${l.party_id ? ' (customer)' : ''} ${l.debit && l.debit.amount !== '0.00' ? `Dr ${l.debit.amount}` : `Cr ${l.credit!.amount}`}`)
    .sort();

describe('posting rules (invoices, credit notes, payments, recognition, accruals)', () => {
  let api: TestApi;
  let w: Awaited<ReturnType<typeof startWorker>>;
  const em = () => api.orm.em.fork() as EntityManager;
  beforeAll(async () => {
    api = await startApi();
    w = await startWorker();
  });
  afterAll(async () => {
    await w.close();
    await api.close();
  });

  async function entries(t: Tenant, q: string): Promise<EntryJson[]> {
    return (await t.get(`/v1/ledger/entries?limit=100&${q}`).expect(200)).body.data as EntryJson[];
  }
  async function entryOf(t: Tenant, type: string, id: string): Promise<EntryJson> {
    const list = (await entries(t, `source_type=${type}&source_id=${id}`)).filter((e) => !e.reverses_entry_id);
    expect(list).toHaveLength(1);
    return list[0];
  }
  async function trialBalance(t: Tenant, period: string) {
    const res = await t.get(`/v1/ledger/trial-balance?period=${period}`).expect(200);
    const usd = res.body.currencies.find((c: { currency: string }) => c.currency === 'USD');
    const acc = (code: string) => usd.accounts.find((a: { code: string }) => a.code === code) ?? { opening: { amount: '0.00' }, debits: { amount: '0.00' }, credits: { amount: '0.00' }, closing: { amount: '0.00' } };
    return { usd, acc };
  }
  async function finalize(t: Tenant, id: string): Promise<InvoiceJson> {
    return (await t.post(`/v1/invoices/${id}/finalize`, {}).expect(201)).body as InvoiceJson;
  }

  it('a monthly invoice with usage, seats, tax, a credit note and a payment: the entries and balances computed by hand', async () => {
    const lastMonth = monthStart(-1);
    const thisMonth = monthStart(0);
    const t = await tenant(api, 'posting: monthly');
    await t.product({ key: 'team_fee', name: 'Team plan', kind: 'recurring' });
    await t.product({ key: 'seats', name: 'Seats', kind: 'seat' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('team', [
      { product_key: 'team_fee', price: { model: 'flat', amount: '49' } },
      { product_key: 'seats', included_seats: 1, price: { model: 'per_unit', unit_amount: '10' } },
      { product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } },
    ]);
    const s = await t.subscribe('acme', 'team', { started_at: lastMonth, seats: 3, tax_rate: '0.2' });
    const customer = s.customerId;

    // Opening invoice (last month's fees, in advance): 49 + 2 × 10 = 69.00, tax 13.80, total 82.80.
    const [openingRef] = await t.invoices(`&subscription=${s.subscriptionId}&kind=opening`);
    const opening = await finalize(t, openingRef.id);
    expect(opening.total.amount).toBe('82.80');
    expect(shape(await entryOf(t, 'invoice', opening.id))).toEqual(['1100 (customer) Dr 82.80', '2200 (customer) Cr 69.00', '2300 Cr 13.80']);
    const schedules = (await t.get(`/v1/ledger/deferral-schedules?limit=100`).expect(200)).body.data as {
      source_id: string;
      to_account: string;
      total: { amount: string };
      description: string;
      service_start: string;
      service_end: string;
    }[];
    const openingLines = new Map(opening.lines.map((l) => [l.id, l]));
    const mine = schedules.filter((x) => openingLines.has(x.source_id));
    expect(mine.map((x) => `${openingLines.get(x.source_id)!.type} ${x.to_account} ${x.total.amount}`).sort()).toEqual(['base_fee 4000 49.00', 'seat 4200 20.00']);
    // Each schedule names its line and runs over the line's service period (as finalization read the lines).
    for (const x of mine) {
      const line = openingLines.get(x.source_id)!;
      expect(x.description).toBe(`Invoice ${opening.number}: ${line.description}`);
      expect([x.service_start, x.service_end]).toEqual([line.period_start.slice(0, 10), line.period_end.slice(0, 10)]);
    }

    // Period invoice: last month's usage in arrears (25,000 calls, 15,000 over × 0.005 = 75.00) and this month's
    // fees in advance (69.00): subtotal 144.00, tax 28.80, total 172.80.
    await sendAll(t, t.calls('acme', 'api.call', 25_000, new Date(lastMonth.getTime() + 10 * 86_400_000)));
    await runPeriodEnd(api, w, t.orgId);
    const draft = await t.periodInvoice(s.subscriptionId, lastMonth);
    const inv = await finalize(t, draft.id);
    expect(inv.total.amount).toBe('172.80');
    expect(shape(await entryOf(t, 'invoice', inv.id))).toEqual(['1100 (customer) Dr 172.80', '2200 (customer) Cr 69.00', '2300 Cr 28.80', '4100 Cr 75.00']);

    // Credit note of 15.00 on the overage line: + 20% tax = 18.00 off the receivable.
    const overage = inv.lines.find((l) => l.type === 'usage_overage')!;
    const cn = await t.post(`/v1/invoices/${inv.id}/credit-notes`, { reason: 'goodwill', lines: [{ invoice_line_id: overage.id, amount: '15.00' }] }).expect(201);
    expect(shape(await entryOf(t, 'credit_note', cn.body.id))).toEqual(['1100 (customer) Cr 18.00', '2300 Dr 3.00', '4900 Dr 15.00']);

    // The rest paid: 172.80 − 18.00 = 154.80.
    const pay = await t.post('/v1/payments', { invoice_id: inv.id, amount: '154.80', received_at: new Date().toISOString(), reference: 'wire-1' }).expect(201);
    expect(shape(await entryOf(t, 'payment', pay.body.payment.id))).toEqual(['1000 Dr 154.80', '1100 (customer) Cr 154.80']);

    // Every document posted on its accounting date: the opening invoice on the subscription's start day, the
    // period invoice on its period's last day (both last month), the credit note and payment today.
    expect((await entryOf(t, 'invoice', opening.id)).date).toBe(day(lastMonth));
    expect((await entryOf(t, 'invoice', inv.id)).date).toBe(lastDayOf(lastMonth));
    expect(inv.issue_date).toBe(lastDayOf(lastMonth));
    expect((await entryOf(t, 'credit_note', cn.body.id)).date).toBe(today());

    // Month end of last month: its fees (billed on its first day) are recognized in it; its usage was invoiced
    // in it (the period ends in it), so nothing is accrued.
    const recognition = api.app.get(RevenueRecognitionService);
    expect((await recognition.recognize(em(), t.orgId, ym(lastMonth))).recognized.USD?.format()).toBe('69.00');
    const accrual = await api.app.get(UsageAccrualService).accrue(em(), t.orgId, ym(lastMonth));
    expect(accrual).toMatchObject({ accrued: 0, reversed: 0 });
    // This month's run: the fees billed in advance on last month's last day (49.00 + 20.00).
    const thisRun = await recognition.recognize(em(), t.orgId, ym(thisMonth));
    expect(thisRun.recognized.USD?.format()).toBe('69.00');
    expect((await recognition.recognize(em(), t.orgId, ym(thisMonth))).entriesPosted).toBe(0);

    // Last month holds its own books: both invoices, its fees recognized, its usage invoiced; this month's fees deferred.
    const last = await trialBalance(t, ym(lastMonth));
    expect({
      ar: last.acc('1100').closing.amount,
      deferred: last.acc('2200').closing.amount,
      tax: last.acc('2300').closing.amount,
      subscription: last.acc('4000').closing.amount,
      usage: last.acc('4100').closing.amount,
      seats: last.acc('4200').closing.amount,
      unbilled: last.acc('1150').closing.amount,
    }).toEqual({ ar: '255.60', deferred: '-69.00', tax: '-42.60', subscription: '-49.00', usage: '-75.00', seats: '-20.00', unbilled: '0.00' });
    // This month, by hand: AR 255.60 − 18.00 − 154.80 = 82.80; deferred 69.00 − 69.00 recognized;
    // tax 42.60 − 3.00; revenue: last month's plus this month's fees, last month's usage.
    const now = await trialBalance(t, ym(thisMonth));
    const closing = (code: string) => now.acc(code).closing.amount;
    expect({
      cash: closing('1000'),
      ar: closing('1100'),
      unbilled: closing('1150'),
      deferred: closing('2200'),
      tax: closing('2300'),
      subscription: closing('4000'),
      usage: closing('4100'),
      seats: closing('4200'),
      contra: closing('4900'),
    }).toEqual({ cash: '154.80', ar: '82.80', unbilled: '0.00', deferred: '0.00', tax: '-39.60', subscription: '-98.00', usage: '-75.00', seats: '-40.00', contra: '15.00' });
    expect(now.acc('1100')).toMatchObject({ opening: { amount: '255.60' }, debits: { amount: '0.00' }, credits: { amount: '172.80' } });
    expect(now.usd.balanced).toBe(true);
    const ar = now.usd.sub_ledgers.find((x: { account_code: string }) => x.account_code === '1100');
    expect(ar.ties_to_control).toBe(true);
    expect(ar.parties.map((p: { party_id: string; closing: { amount: string } }) => [p.party_id, p.closing.amount])).toEqual([[customer, '82.80']]);

    // Finalizing again posts nothing more.
    await t.post(`/v1/invoices/${inv.id}/finalize`, {}).expect(201);
    expect((await entries(t, `source_type=invoice&source_id=${inv.id}`)).length).toBe(1);
  });

  it('a yearly plan billed in advance recognizes 1/12 a month; deferred revenue rolls forward over 12 months', async () => {
    const start = monthStart(0);
    const t = await tenant(api, 'posting: yearly');
    await t.product({ key: 'annual_fee', name: 'Annual plan', kind: 'recurring' });
    await t.plan('annual', [{ product_key: 'annual_fee', price: { model: 'flat', amount: '1200' } }], { interval: 'year' });
    const s = await t.subscribe('yearly-co', 'annual', { started_at: start });
    const [openingRef] = await t.invoices(`&subscription=${s.subscriptionId}&kind=opening`);
    const opening = await finalize(t, openingRef.id);
    expect(opening.total.amount).toBe('1200.00');
    expect(shape(await entryOf(t, 'invoice', opening.id))).toEqual(['1100 (customer) Dr 1200.00', '2200 (customer) Cr 1200.00']);

    const recognition = api.app.get(RevenueRecognitionService);
    let total = dec(0);
    for (let k = 0; k < 12; k++) {
      const month = ym(addMonths(start, k));
      const run = await recognition.recognize(em(), t.orgId, month);
      expect(run.recognized.USD?.format()).toBe('100.00');
      const { acc } = await trialBalance(t, month);
      // In credit terms (the report's balances are debit-positive): opening + billed − recognized = closing.
      const credit = (x: { amount: string }) => dec(x.amount).neg();
      const d = acc('2200');
      const billed = dec(d.credits.amount);
      const recognized = dec(d.debits.amount);
      expect(billed.toFixed(2)).toBe(k === 0 ? '1200.00' : '0.00');
      expect(recognized.toFixed(2)).toBe('100.00');
      expect(credit(d.opening).plus(billed).minus(recognized).toFixed(2)).toBe(credit(d.closing).toFixed(2));
      expect(credit(d.closing).toFixed(2)).toBe(dec(1200 - 100 * (k + 1)).toFixed(2));
      expect(acc('4000').credits.amount).toBe('100.00');
      total = total.plus(recognized);
    }
    expect(total.toFixed(2)).toBe('1200.00');
    expect((await trialBalance(t, ym(addMonths(start, 12)))).acc('2200').closing.amount).toBe('0.00');
  });

  it('usage of a billing period crossing a month end is accrued at the month end and reversed when its invoice posts', async () => {
    // Anchor the 15th, started two months ago: period [M-2 15th, M-1 15th) crosses the end of M-2.
    const m2 = monthStart(-2);
    const periodStart = new Date(m2.getTime() + 14 * 86_400_000);
    const t = await tenant(api, 'posting: accrual');
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    await t.plan('metered', [{ product_key: 'api_calls', allowance: '10000', price: { model: 'per_unit', unit_amount: '0.005' } }]);
    await t.customer('crossing');
    const sub = await t.post(`/v1/customers/crossing/subscriptions`, { plan_key: 'metered', billing_anchor: 15, started_at: periodStart.toISOString() }).expect(201);
    // 12,000 calls before the month end (2,000 over: 10.00), 5,000 after it (all over: 25.00).
    await sendAll(t, [...t.calls('crossing', 'api.call', 12_000, new Date(m2.getTime() + 19 * 86_400_000)), ...t.calls('crossing', 'api.call', 5_000, new Date(monthStart(-1).getTime() + 4 * 86_400_000))]);
    const [bp] = await sql<{ id: string }>(api, 'select id from billing_periods where subscription_id = ? and period_start = ?', [sub.body.id, periodStart.toISOString()]);
    const accruals = api.app.get(UsageAccrualService);

    // M-2's month end, before the period is rated: its share of the usage is 10.00.
    const first = await accruals.accrue(em(), t.orgId, ym(m2));
    expect(first).toMatchObject({ accrued: 1, reversed: 0, amounts: { USD: '10.00' } });
    const accrued = await entries(t, `source_type=billing_period&source_id=${bp.id}`);
    expect(accrued.map((e) => [e.date, shape(e)])).toEqual([[`${ym(m2)}-${new Date(Date.UTC(m2.getUTCFullYear(), m2.getUTCMonth() + 1, 0)).getUTCDate()}`, ['1150 (customer) Dr 10.00', '4100 (customer) Cr 10.00']]]);

    // The period is invoiced (35.00 of usage) on its last day, the 14th of M-1: posting it reverses the accrual that day.
    await runPeriodEnd(api, w, t.orgId);
    const draft = await t.periodInvoice(sub.body.id, periodStart);
    const inv = await finalize(t, draft.id);
    expect(inv.subtotal.amount).toBe('35.00');
    expect(shape(await entryOf(t, 'invoice', inv.id))).toEqual(['1100 (customer) Dr 35.00', '4100 Cr 35.00']);
    const after = await entries(t, `source_type=billing_period&source_id=${bp.id}`);
    const reversal = after.find((e) => e.reverses_entry_id === accrued[0].id)!;
    expect(inv.issue_date).toBe(`${ym(monthStart(-1))}-14`);
    expect((await entryOf(t, 'invoice', inv.id)).date).toBe(`${ym(monthStart(-1))}-14`);
    expect(reversal).toMatchObject({ date: `${ym(monthStart(-1))}-14` });
    expect(shape(reversal)).toEqual(['1150 (customer) Cr 10.00', '4100 (customer) Dr 10.00']);

    // M-1's month end: the period ended inside M-1 and its invoice (dated in M-1) carries the rest: nothing to accrue.
    expect(await accruals.accrue(em(), t.orgId, ym(monthStart(-1)))).toMatchObject({ accrued: 0, reversed: 0 });
    const m1 = await trialBalance(t, ym(monthStart(-1)));
    expect([m1.acc('4100').debits.amount, m1.acc('4100').credits.amount]).toEqual(['10.00', '35.00']);
    const { acc } = await trialBalance(t, ym(monthStart(0)));
    // Everything billed; nothing left unbilled; usage revenue 35.00 in all.
    expect(acc('1150').closing.amount).toBe('0.00');
    expect(acc('4100').closing.amount).toBe('-35.00');
  });
});
