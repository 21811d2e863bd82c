// A month's check fingerprints cover exactly the month's inputs (docs/reconciliation.md "Fingerprints"):
// a plan change, seat change, subscription or event effective in a later month — or an event of an earlier
// month — leaves every fingerprint of the month as it was; the same kind of change effective in the month
// moves the fingerprints of the checks that read it.
import type { EntityManager } from '@mikro-orm/postgresql';
import { SubscriptionsService } from '@closebook/subscriptions';
import { SubscriptionBillingService } from '@closebook/invoicing';
import { CHECK_KEYS, CheckFingerprints } from '@closebook/reconciliation';
import { startApi, type TestApi } from '../helpers/api';
import { DAY, monthStart, rollUp, sendAll, tenant, type Tenant } from '../invoicing/fixtures';

const ym = (d: Date) => d.toISOString().slice(0, 7);

describe('fingerprints of a month', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  const em = () => api.orm.em.fork() as EntityManager;
  const [m2, m1, m0] = [monthStart(-2), monthStart(-1), monthStart(0)];
  const P = ym(m1);

  async function world(name: string) {
    const t = await tenant(api, name);
    await t.product({ key: 'fee', name: 'Fee', kind: 'recurring' });
    await t.product({ key: 'seats', name: 'Seats', kind: 'seat' });
    await t.product({ key: 'api_calls', name: 'API calls', kind: 'metered', unit: 'calls', meter: { event_name: 'api.call', aggregation: 'count' } });
    const products = (fee: string, allowance: string) => [
      { product_key: 'fee', price: { model: 'flat', amount: fee } },
      { product_key: 'seats', included_seats: 1, price: { model: 'per_unit', unit_amount: '10' } },
      { product_key: 'api_calls', allowance, allowance_basis: 'per_seat', price: { model: 'per_unit', unit_amount: '0.01' } },
    ];
    await t.plan('basic', products('20', '100'));
    await t.plan('premium', products('90', '1000'));
    const subs: Record<string, string> = {};
    for (const who of ['plan_later', 'seats_later', 'events', 'plan_in', 'seats_in']) subs[who] = (await t.subscribe(who, 'basic', { started_at: m1, seats: 2 })).subscriptionId;
    subs.older = (await t.subscribe('older', 'basic', { started_at: m2 })).subscriptionId;
    await sendAll(t, [...t.calls('events', 'api.call', 30, new Date(m1.getTime() + 3 * DAY)), ...t.calls('older', 'api.call', 10, new Date(m1.getTime() + 4 * DAY))]);
    await rollUp(api, t.orgId);
    return { t, subs };
  }

  const fingerprints = async (t: Tenant) => {
    const fp = api.app.get(CheckFingerprints);
    return Object.fromEntries(await Promise.all(CHECK_KEYS.map(async (c) => [c, (await fp.current(em(), t.orgId, P, c)).fingerprint] as const)));
  };
  const changed = (a: Record<string, string>, b: Record<string, string>) => CHECK_KEYS.filter((c) => a[c] !== b[c]);

  it('changes effective in a later month, or events of an earlier one, leave the month untouched', async () => {
    const { t, subs } = await world('fingerprints: later');
    const billing = api.app.get(SubscriptionBillingService);
    const subscriptions = api.app.get(SubscriptionsService);
    const before = await fingerprints(t);

    // A plan change: an upgrade now (this month) and a downgrade scheduled for next month.
    await billing.transition(em(), t.orgId, subs.plan_later, { plan_key: 'premium' });
    await billing.transition(em(), t.orgId, subs.plan_later, { plan_key: 'basic', timing: 'period_end' });
    expect(changed(before, await fingerprints(t))).toEqual([]);
    // A seat change now and one scheduled for next month.
    await subscriptions.changeSeats(em(), t.orgId, subs.seats_later, { seats: 5 });
    await subscriptions.changeSeats(em(), t.orgId, subs.seats_later, { seats: 7, effective_at: monthStart(1).toISOString() });
    expect(changed(before, await fingerprints(t))).toEqual([]);
    // A subscription starting this month (its opening invoice is this month's document).
    await t.subscribe('newcomer', 'basic', { started_at: m0 });
    expect(changed(before, await fingerprints(t))).toEqual([]);
    // Events of this month, and of the month before the one checked, rolled up.
    await sendAll(t, [...t.calls('events', 'api.call', 40, new Date(m0.getTime() + 60_000)), ...t.calls('older', 'api.call', 25, new Date(m2.getTime() + 5 * DAY))]);
    await rollUp(api, t.orgId);
    expect(changed(before, await fingerprints(t))).toEqual([]);
  });

  it('the same kinds of change effective in the month move the checks that read them', async () => {
    const { t, subs } = await world('fingerprints: in month');
    const billing = api.app.get(SubscriptionBillingService);
    const subscriptions = api.app.get(SubscriptionsService);
    const inMonth = new Date(m1.getTime() + 19 * DAY);
    let before = await fingerprints(t);

    // An upgrade effective on the 20th of the month: the plans in force over its period change.
    await billing.transition(em(), t.orgId, subs.plan_in, { plan_key: 'premium' }, inMonth);
    let after = await fingerprints(t);
    expect(changed(before, after)).toEqual(expect.arrayContaining(['events_rollups', 'rollups_lines']));
    before = after;
    // A seat change on the 20th: the per-seat allowance a re-rating reads changes.
    await subscriptions.changeSeats(em(), t.orgId, subs.seats_in, { seats: 4 }, inMonth);
    after = await fingerprints(t);
    expect(changed(before, after)).toEqual(expect.arrayContaining(['rollups_lines']));
    before = after;
    // A subscription starting in the month: a billing period more ends in it.
    await t.subscribe('joiner', 'basic', { started_at: new Date(m1.getTime() + 10 * DAY) });
    after = await fingerprints(t);
    expect(changed(before, after)).toEqual(expect.arrayContaining(['events_rollups', 'rollups_lines', 'completeness']));
    before = after;
    // Events in the month.
    await sendAll(t, t.calls('events', 'api.call', 5, new Date(m1.getTime() + 12 * DAY)));
    after = await fingerprints(t);
    expect(changed(before, after)).toEqual(['events_rollups']);
    await rollUp(api, t.orgId);
    expect(changed(after, await fingerprints(t))).toEqual(expect.arrayContaining(['events_rollups', 'rollups_lines']));
  });
});
