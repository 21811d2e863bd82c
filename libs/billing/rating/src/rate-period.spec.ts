import { dec } from '@closebook/money';
import fc from 'fast-check';
import { RatedLine } from './lines';
import { RatingPlanVersion } from './plan';
import {
  classifyTransition,
  isConversion,
  PeriodInvoiceInput,
  rateOpeningInvoice,
  ratePeriodInvoice,
  rateTransition,
  RatedInvoice,
} from './rate-period';
import { replayLine } from './steps';
import { FREE, HOSTING, iso, PRO, RETAINER, STARTER, STARTER_YEARLY, TEAM } from './testing/fixtures';

const jan = { start: iso('2024-01-01'), end: iso('2024-02-01') };
const april = { start: iso('2024-04-01'), end: iso('2024-05-01') }; // 30 days
const SUB = 'sub_1';

const brief = (inv: RatedInvoice) => inv.lines.map((l) => `${l.type} ${l.quantity} ${l.amount}`);

/** Every line's steps replay to its amount; lines sum to the subtotal; total = subtotal + tax. */
function checkInvoice(inv: RatedInvoice): void {
  for (const l of inv.lines) {
    const r = replayLine(l.steps);
    expect(r.mismatches).toEqual([]);
    expect(r.amount).toBe(l.amount);
    expect(r.amount_exact).toBe(l.amount_exact);
  }
  const sum = inv.lines.reduce((a, l) => a.plus(dec(l.amount)), dec(0));
  expect(sum.toFixed(2)).toBe(inv.subtotal);
  expect(dec(inv.subtotal).plus(dec(inv.tax?.amount ?? '0')).toFixed(2)).toBe(inv.total);
}

function period(plan: RatingPlanVersion, extra: Partial<PeriodInvoiceInput> = {}, seats?: number): PeriodInvoiceInput {
  return {
    subscription_id: SUB,
    subscription_start: iso('2023-06-01'),
    period: jan,
    segments: [{ from: iso('2023-06-01'), plan, ...(seats !== undefined ? { seats } : {}) }],
    ...extra,
  };
}

describe('SPEC §10 worked examples (period invoices, before tax)', () => {
  it('$49 incl. 10,000 calls, 25,000 calls → 49.00 + 15,000 × 0.005 = 124.00', () => {
    const inv = ratePeriodInvoice(period(STARTER, { usage: [{ product_key: 'api_calls', quantity: '25000' }] }));
    expect(brief(inv)).toEqual(['base_fee 1 49.00', 'usage_included 10000 0.00', 'usage_overage 15000 75.00']);
    expect(inv.subtotal).toBe('124.00');
    expect(inv.total).toBe('124.00');
    // flat fee in advance (February), usage in arrears (January), each labelled with its own period
    expect([inv.lines[0].period_start, inv.lines[0].period_end]).toEqual([iso('2024-02-01'), iso('2024-03-01')]);
    expect([inv.lines[2].period_start, inv.lines[2].period_end]).toEqual([jan.start, jan.end]);
    expect(inv.lines[0].description).toBe('Starter plan (monthly)');
    expect(inv.lines[2].description).toBe('API calls over 10,000 included: 15,000 × $0.005');
    expect(inv.overage_total).toBe('75.00');
    checkInvoice(inv);
  });

  it('same plan, 8,000 calls → 49.00 and an included-usage line of 8,000 at 0', () => {
    const inv = ratePeriodInvoice(period(STARTER, { usage: [{ product_key: 'api_calls', quantity: '8000' }] }));
    expect(brief(inv)).toEqual(['base_fee 1 49.00', 'usage_included 8000 0.00']);
    expect(inv.subtotal).toBe('49.00');
    expect(inv.allowance[0]).toMatchObject({ included: '10000', used: '8000', remaining: '2000', percent_used: '80.00' });
    checkInvoice(inv);
  });

  it('$99 incl. 3 seats, $15 per extra seat, 12 seats → 99.00 + 9 × 15 = 234.00', () => {
    const inv = ratePeriodInvoice(period(PRO, {}, 12));
    expect(brief(inv)).toEqual(['base_fee 1 99.00', 'seat 9 135.00']);
    expect(inv.lines[1].description).toBe('Seats over 3 included: 9 × $15.00 (monthly)');
    expect(inv.subtotal).toBe('234.00');
    checkInvoice(inv);
  });

  it('$20 per user, 5 GB per user included, $2/GB over; 10 users, 80 GB → 200.00 + (80 − 50) × 2 = 260.00', () => {
    const inv = ratePeriodInvoice(period(TEAM, { usage: [{ product_key: 'storage', quantity: '80' }] }, 10));
    expect(brief(inv)).toEqual(['seat 10 200.00', 'usage_included 50 0.00', 'usage_overage 30 60.00']);
    expect(inv.lines[2].description).toBe('Storage over 50 included: 30 × $2.00');
    expect(inv.subtotal).toBe('260.00');
    checkInvoice(inv);
  });

  it('Retainer $199 incl. 5 h; 3 extra hours × $150 and 1 incident × $100 → 749.00', () => {
    const inv = ratePeriodInvoice(
      period(RETAINER, {
        on_demand: [
          { charge_id: 'inc-1', description: 'Incident response', quantity: '1', unit_amount: '100', date: '2024-01-20T08:00:00Z' },
          { charge_id: 'hrs-1', description: 'Consulting hours', quantity: '3', unit_amount: '150', date: '2024-01-12T16:00:00Z' },
        ],
      }),
    );
    expect(brief(inv)).toEqual(['base_fee 1 199.00', 'on_demand 3 450.00', 'on_demand 1 100.00']);
    expect(inv.lines[1].description).toBe('Consulting hours (2024-01-12): 3 × $150.00');
    expect([inv.lines[1].period_start, inv.lines[1].period_end]).toEqual([iso('2024-01-12'), iso('2024-01-13')]);
    expect(inv.subtotal).toBe('749.00');
    checkInvoice(inv);
  });

  it('tax: rate × subtotal rounded half-up as its own line; total = subtotal + tax', () => {
    const inv = ratePeriodInvoice(period(STARTER, { usage: [{ product_key: 'api_calls', quantity: '25000' }], tax_rate: '0.0825' }));
    // 124.00 × 0.0825 = 10.23 exactly
    expect(inv.tax).toMatchObject({ type: 'tax', rate: '0.0825', taxable_amount: '124.00', amount_exact: '10.23', amount: '10.23' });
    expect(inv.total).toBe('134.23');
    // 49.00 × 0.19 = 9.31; 49 × 0.0725 = 3.5525 → 3.55
    expect(ratePeriodInvoice(period(STARTER, { tax_rate: '0.0725' })).tax?.amount).toBe('3.55');
    expect(ratePeriodInvoice(period(STARTER, { tax_rate: '0.0725' })).total).toBe('52.55');
    expect(replayLine(inv.tax!.steps).amount).toBe('10.23');
    checkInvoice(inv);
  });
});

describe('opening invoice and in-advance flat fees', () => {
  it('a mid-cycle start bills the first period prorated: 49 × 10/30 = 16.333… → 16.33', () => {
    const inv = rateOpeningInvoice({ subscription_id: SUB, subscription_start: '2024-04-21T10:00:00Z', state: { plan: STARTER } });
    expect(brief(inv)).toEqual(['base_fee 1 16.33']);
    expect(inv.lines[0].proration).toMatchObject({ label: '10/30 days', days: 10, days_in_period: 30, from: iso('2024-04-21'), to: iso('2024-05-01') });
    expect(inv.lines[0].description).toBe('Starter plan (monthly, prorated 10/30 days)');
    expect([inv.period_start, inv.period_end]).toEqual([iso('2024-04-21'), iso('2024-05-01')]);
    checkInvoice(inv);
  });

  it('a start on the anchor bills the full fee, seats included', () => {
    const inv = rateOpeningInvoice({ subscription_id: SUB, subscription_start: iso('2024-04-01'), state: { plan: PRO, seats: 5 } });
    expect(brief(inv)).toEqual(['base_fee 1 99.00', 'seat 2 30.00']);
  });

  it('the first partial period prorates the allowance too (3,000 × 10/30 = 1,000) and its invoice bills the next full month', () => {
    const plan: RatingPlanVersion = { ...STARTER, products: [STARTER.products[0], { ...STARTER.products[1], allowance: '3000' } as never] };
    const inv = ratePeriodInvoice({
      subscription_id: SUB,
      subscription_start: '2024-04-21T10:00:00Z',
      period: { start: iso('2024-04-21'), end: iso('2024-05-01') },
      segments: [{ from: '2024-04-21T10:00:00Z', plan }],
      usage: [{ product_key: 'api_calls', quantity: '1500' }],
    });
    // 500 over 1,000 × 0.005 = 2.50; May's fee 49.00
    expect(brief(inv)).toEqual(['base_fee 1 49.00', 'usage_included 1000 0.00', 'usage_overage 500 2.50']);
    expect(inv.lines[0].period_start).toBe(iso('2024-05-01'));
  });

  it('yearly plan: the fee appears only on the invoice that opens its year; usage bills monthly with the ×1.2 allowance', () => {
    const start = iso('2024-03-01');
    const opening = rateOpeningInvoice({ subscription_id: SUB, subscription_start: start, state: { plan: STARTER_YEARLY } });
    expect(brief(opening)).toEqual(['base_fee 1 1188.00']);
    expect([opening.lines[0].period_start, opening.lines[0].period_end]).toEqual([iso('2024-03-01'), iso('2025-03-01')]);
    const inv = (p: { start: string; end: string }) =>
      ratePeriodInvoice({ subscription_id: SUB, subscription_start: start, period: p, segments: [{ from: start, plan: STARTER_YEARLY }], usage: [{ product_key: 'api_calls', quantity: '13000' }] });
    // March 2024 … January 2025: usage only (allowance 10,000 × 1.2 = 12,000 → 1,000 × 0.005 = 5.00)
    expect(brief(inv({ start: iso('2024-03-01'), end: iso('2024-04-01') }))).toEqual(['usage_included 12000 0.00', 'usage_overage 1000 5.00']);
    // February 2025 is the 12th cycle: its invoice opens the next fee year
    const feb = inv({ start: iso('2025-02-01'), end: iso('2025-03-01') });
    expect(brief(feb)).toEqual(['base_fee 1 1188.00', 'usage_included 12000 0.00', 'usage_overage 1000 5.00']);
    expect([feb.lines[0].period_start, feb.lines[0].period_end]).toEqual([iso('2025-03-01'), iso('2026-03-01')]);
  });

  it('a yearly plan started mid-cycle bills a partial first year: 1,188 × 350/365 = 1,139.178… → 1,139.18', () => {
    const inv = rateOpeningInvoice({ subscription_id: SUB, subscription_start: iso('2024-03-16'), state: { plan: STARTER_YEARLY } });
    // 1188 × 350 / 365 = 1139.178… → 1139.18
    expect(brief(inv)).toEqual(['base_fee 1 1139.18']);
    expect(inv.lines[0].proration?.label).toBe('350/365 days');
  });

  it('a cancelled subscription (renews: false) bills its last usage and no advance fee', () => {
    const inv = ratePeriodInvoice(period(STARTER, { renews: false, usage: [{ product_key: 'api_calls', quantity: '25000' }] }));
    expect(brief(inv)).toEqual(['usage_included 10000 0.00', 'usage_overage 15000 75.00']);
  });

  it('a scheduled downgrade bills the next period at the new plan', () => {
    const inv = ratePeriodInvoice(period(PRO, { next: { plan: STARTER } }, 3));
    expect(brief(inv)).toEqual(['base_fee 1 49.00']);
  });
});

describe('plan transitions: each proration strategy on a 30-day month (April 2024, effective Apr 21 → 10/30 days left)', () => {
  const up = (strategy: 'prorated_immediately' | 'prorated_next_invoice' | 'difference_immediately' | 'full_immediately', from = STARTER, to = PRO) =>
    rateTransition({
      subscription_id: SUB,
      subscription_start: iso('2023-06-01'),
      effective_at: '2024-04-21T15:00:00Z',
      from: { plan: from },
      to: { plan: to },
      strategy,
    });

  it('prorated_immediately: credit −49 × 10/30 = −16.333… → −16.33; charge 99 × 10/30 = 33.00; immediate total 16.67', () => {
    const t = up('prorated_immediately');
    expect(t.direction).toBe('upgrade');
    expect(t.proration.label).toBe('10/30 days');
    expect(brief(t.immediate!)).toEqual(['proration_credit 1 -16.33', 'proration_charge 1 33.00']);
    expect(t.immediate!.lines[0].description).toBe('Unused time on Starter plan (monthly, 10/30 days)');
    expect(t.immediate!.lines[1].description).toBe('Remaining time on Pro plan (monthly, 10/30 days)');
    expect([t.immediate!.lines[0].period_start, t.immediate!.lines[0].period_end]).toEqual([iso('2024-04-21'), iso('2024-05-01')]);
    expect(t.immediate!.subtotal).toBe('16.67');
    expect(t.deferred_lines).toEqual([]);
    checkInvoice(t.immediate!);
  });

  it('prorated_next_invoice: the same two lines (−16.33, +33.00) go on the April period invoice', () => {
    const t = up('prorated_next_invoice');
    expect(t.immediate).toBeNull();
    expect(t.deferred_lines.map((l) => `${l.type} ${l.amount}`)).toEqual(['proration_credit -16.33', 'proration_charge 33.00']);
    const inv = ratePeriodInvoice({
      subscription_id: SUB,
      subscription_start: iso('2023-06-01'),
      period: april,
      segments: [
        { from: iso('2023-06-01'), plan: STARTER },
        { from: '2024-04-21T15:00:00Z', plan: PRO },
      ],
      deferred_lines: t.deferred_lines,
    });
    // May's Pro fee 99.00 − 16.33 + 33.00 = 115.67
    expect(brief(inv)).toEqual(['base_fee 1 99.00', 'proration_credit 1 -16.33', 'proration_charge 1 33.00']);
    expect(inv.subtotal).toBe('115.67');
    checkInvoice(inv);
  });

  it('difference_immediately: upgrade charges 99 − 49 = 50.00 now, unprorated; a downgrade credits −50.00 on the next invoice', () => {
    const t = up('difference_immediately');
    expect(brief(t.immediate!)).toEqual(['proration_charge 1 50.00']);
    expect(t.immediate!.lines[0].description).toBe('Change from Starter to Pro: $99.00 − $49.00');
    const down = up('difference_immediately', PRO, STARTER);
    expect(down.direction).toBe('downgrade');
    expect(down.immediate).toBeNull();
    expect(down.deferred_lines.map((l) => `${l.type} ${l.amount}`)).toEqual(['proration_credit -50.00']);
    checkInvoice(t.immediate!);
  });

  it('full_immediately: full new fee 99.00 now, unused old fee credited prorata −16.33', () => {
    const t = up('full_immediately');
    expect(brief(t.immediate!)).toEqual(['proration_credit 1 -16.33', 'proration_charge 1 99.00']);
    expect(t.immediate!.subtotal).toBe('82.67');
  });

  it('strategy: requested, else the current plan’s, else the organization’s, else prorated_immediately', () => {
    const base = { subscription_id: SUB, subscription_start: iso('2023-06-01'), effective_at: '2024-04-21T15:00:00Z', to: { plan: PRO } };
    expect(rateTransition({ ...base, from: { plan: STARTER } }).strategy).toBe('prorated_immediately');
    expect(rateTransition({ ...base, from: { plan: STARTER }, organization_strategy: 'full_immediately' }).strategy).toBe('full_immediately');
    expect(rateTransition({ ...base, from: { plan: { ...STARTER, proration_strategy: 'prorated_next_invoice' } }, organization_strategy: 'full_immediately' }).strategy).toBe(
      'prorated_next_invoice',
    );
  });

  it('seat change mid-period prorates like the flat fee: 5 → 8 seats (3 included, $15): −30 × 10/30 = −10.00, +75 × 10/30 = 25.00', () => {
    const t = rateTransition({
      subscription_id: SUB,
      subscription_start: iso('2023-06-01'),
      effective_at: iso('2024-04-21'),
      from: { plan: PRO, seats: 5 },
      to: { plan: PRO, seats: 8 },
    });
    expect(brief(t.immediate!)).toEqual(['proration_credit 2 -10.00', 'proration_charge 5 25.00']);
    expect(t.immediate!.lines[1].description).toBe('Remaining time on Seats over 3 included: 5 × $15.00 (monthly, 10/30 days)');
  });

  it('an upgrade’s prorata allowance avoids overage the old plan alone would have billed', () => {
    const segments = [
      { from: iso('2023-06-01'), plan: STARTER },
      { from: '2024-04-21T15:00:00Z', plan: PRO },
    ];
    const usage = [{ product_key: 'api_calls', quantity: '13000' }];
    // Starter alone: 13,000 − 10,000 = 3,000 × 0.005 = 15.00 overage
    const alone = ratePeriodInvoice({ subscription_id: SUB, subscription_start: iso('2023-06-01'), period: april, segments: [segments[0]], usage });
    expect(alone.overage_total).toBe('15.00');
    // prorata: 10,000 × 20/30 + 20,000 × 10/30 = 13,333.333333333334 ≥ 13,000 → no overage
    const inv = ratePeriodInvoice({ subscription_id: SUB, subscription_start: iso('2023-06-01'), period: april, segments, usage });
    expect(inv.overage_total).toBe('0.00');
    expect(inv.allowance[0]).toMatchObject({ included: '13333.333333333334', used: '13000', overage_quantity: '0' });
    expect(brief(inv)).toEqual(['base_fee 1 99.00', 'usage_included 13000 0.00']);
    // above it, overage is rated at the plan in force at period end (Pro: $0.004):
    // 15,000 − 13,333.333333333334 = 1,666.666666666666 × 0.004 = 6.666… → 6.67
    const more = ratePeriodInvoice({ subscription_id: SUB, subscription_start: iso('2023-06-01'), period: april, segments, usage: [{ product_key: 'api_calls', quantity: '15000' }] });
    expect(more.lines.find((l) => l.type === 'usage_overage')).toMatchObject({ quantity: '1666.666666666666', unit_amount: '0.004', amount: '6.67' });
    checkInvoice(more);
  });

  it('conversion: a move from a free plan to a paid one', () => {
    expect(isConversion({ plan: FREE }, { plan: STARTER })).toBe(true);
    expect(isConversion({ plan: STARTER }, { plan: PRO })).toBe(false);
    const t = rateTransition({ subscription_id: SUB, subscription_start: iso('2023-06-01'), effective_at: iso('2024-04-21'), from: { plan: FREE }, to: { plan: STARTER } });
    expect(t.conversion).toBe(true);
    expect(brief(t.immediate!)).toEqual(['proration_charge 1 16.33']);
  });

  it('classifyTransition compares monthly-equivalent flat fees', () => {
    expect(classifyTransition({ plan: STARTER }, { plan: PRO })).toBe('upgrade');
    expect(classifyTransition({ plan: PRO }, { plan: STARTER })).toBe('downgrade');
    // yearly fees count as 1/12 a month: 1,188 / 12 = 99 > 49
    expect(classifyTransition({ plan: STARTER }, { plan: STARTER_YEARLY })).toBe('upgrade');
    const yearly588: RatingPlanVersion = { ...STARTER_YEARLY, products: [{ ...STARTER_YEARLY.products[0], price: { model: 'flat', amount: '588' } } as never, STARTER_YEARLY.products[1]] };
    expect(classifyTransition({ plan: STARTER }, { plan: yearly588 })).toBe('lateral');
    expect(classifyTransition({ plan: PRO, seats: 3 }, { plan: PRO, seats: 4 })).toBe('upgrade');
  });

  it('monthly → yearly mid-cycle: the yearly fee is charged for the rest of its fee year; difference_immediately falls back to prorated', () => {
    const t = rateTransition({
      subscription_id: SUB,
      subscription_start: iso('2023-06-01'),
      effective_at: '2024-04-21T15:00:00Z',
      from: { plan: STARTER },
      to: { plan: STARTER_YEARLY },
      strategy: 'difference_immediately',
    });
    expect(t.applied_strategy).toBe('prorated_immediately');
    // fee year 2023-06-01 – 2024-06-01 has 366 days; Apr 21 → Jun 1 is 41 days: 1,188 × 41/366 = 133.0819… → 133.08
    // old monthly fee: −49 × 10/30 = −16.33
    expect(brief(t.immediate!)).toEqual(['proration_credit 1 -16.33', 'proration_charge 1 133.08']);
    expect(t.immediate!.lines[1]).toMatchObject({ period_start: iso('2024-04-21'), period_end: iso('2024-06-01') });
    expect(t.immediate!.lines[1].proration).toMatchObject({ label: '41/366 days', period_start: iso('2023-06-01'), period_end: iso('2024-06-01') });
    // April's period invoice bills no fee for May (already paid to the year end); May's opens the next year
    const seg = [
      { from: iso('2023-06-01'), plan: STARTER },
      { from: '2024-04-21T15:00:00Z', plan: STARTER_YEARLY },
    ];
    const aprInv = ratePeriodInvoice({ subscription_id: SUB, subscription_start: iso('2023-06-01'), period: april, segments: seg });
    expect(brief(aprInv)).toEqual([]);
    const mayInv = ratePeriodInvoice({
      subscription_id: SUB,
      subscription_start: iso('2023-06-01'),
      period: { start: iso('2024-05-01'), end: iso('2024-06-01') },
      segments: [seg[1]],
    });
    expect(brief(mayInv)).toEqual(['base_fee 1 1188.00']);
    expect(mayInv.lines[0]).toMatchObject({ period_start: iso('2024-06-01'), period_end: iso('2025-06-01') });
  });

  it('a scheduled switch from monthly to yearly at a cycle boundary bills the rest of the fee year, prorated', () => {
    const inv = ratePeriodInvoice({
      subscription_id: SUB,
      subscription_start: iso('2023-06-01'),
      period: april,
      segments: [{ from: iso('2023-06-01'), plan: STARTER }],
      next: { plan: STARTER_YEARLY },
    });
    // May 1 → Jun 1 = 31 of 366 days: 1,188 × 31/366 = 100.6229… → 100.62
    expect(brief(inv)).toEqual(['base_fee 1 100.62']);
    expect(inv.lines[0].proration?.label).toBe('31/366 days');
  });
});

describe('keyed prices, free tiers, rollover in a period invoice', () => {
  it('prod vs preview with separate allowances', () => {
    const inv = ratePeriodInvoice(
      period(HOSTING, {
        usage: [
          { product_key: 'bandwidth', price_key: 'prod', quantity: '130' },
          { product_key: 'bandwidth', price_key: 'preview', quantity: '620' },
        ],
      }),
    );
    // prod: 30 over 100 × 0.10 = 3.00; preview: 120 over 500 × 0.02 = 2.40
    expect(inv.lines.map((l) => `${l.line_key} ${l.quantity} ${l.amount}`)).toEqual([
      `base_fee:hosting_fee:${iso('2024-02-01')} 1 20.00`,
      'usage_included:bandwidth:preview 500 0.00',
      'usage_overage:bandwidth:preview 120 2.40',
      'usage_included:bandwidth:prod 100 0.00',
      'usage_overage:bandwidth:prod 30 3.00',
    ]);
    expect(inv.subtotal).toBe('25.40');
    expect(() => ratePeriodInvoice(period(HOSTING, { usage: [{ product_key: 'bandwidth', price_key: 'staging', quantity: '1' }] }))).toThrow(/no price/);
    checkInvoice(inv);
  });

  it('block free tier: overage recorded, capped, billable 0', () => {
    const inv = ratePeriodInvoice(period(FREE, { usage: [{ product_key: 'build_minutes', quantity: '1800' }] }));
    expect(brief(inv)).toEqual(['base_fee 1 0.00', 'usage_included 1000 0.00', 'usage_overage 0 0.00']);
    expect(inv.allowance[0]).toMatchObject({ overage_quantity: '800', billable_quantity: '0', capped: true, billable_usage: { amount: '0.00' } });
    expect(inv.total).toBe('0.00');
  });

  it('rollover: the allowance ledger carries unused units into the next invoice', () => {
    const plan: RatingPlanVersion = {
      ...STARTER,
      allowance_rollover_default: true,
      products: [STARTER.products[0], { ...STARTER.products[1], rollover_cap: '5000' } as never],
    };
    const jan1 = ratePeriodInvoice(period(plan, { usage: [{ product_key: 'api_calls', quantity: '4000' }] }));
    expect(jan1.allowance_ledger.rollovers).toMatchObject([{ product_key: 'api_calls', carried: '5000', cap: '5000' }]);
    expect(jan1.allowance_ledger.expiries).toMatchObject([{ unused: '6000', carried: '5000', expired: '1000' }]);
    const feb = { start: iso('2024-02-01'), end: iso('2024-03-01') };
    const feb1 = ratePeriodInvoice({ ...period(plan, { usage: [{ product_key: 'api_calls', quantity: '16000' }] }), period: feb, grants: jan1.allowance_ledger.carried_forward });
    // 5,000 rolled over + 10,000 own = 15,000 → 1,000 over × 0.005 = 5.00
    expect(brief(feb1)).toEqual(['base_fee 1 49.00', 'usage_included 15000 0.00', 'usage_overage 1000 5.00']);
    expect(feb1.allowance[0]).toMatchObject({ included: '10000', rolled_over: '5000' });
    expect(feb1.lines[1].description).toBe('API calls included: 15,000 of 15,000 calls (5,000 rolled over)');
    expect(feb1.allowance_ledger.drawdowns.map((d) => [d.grant_id, d.drawn])).toEqual([
      [`${SUB}:api_calls:-:${iso('2024-01-01')}:rollover`, '5000'],
      [`${SUB}:api_calls:-:${iso('2024-02-01')}`, '10000'],
    ]);
    checkInvoice(feb1);
  });

  it('adjustments keep their original period; credits are negative lines', () => {
    const inv = ratePeriodInvoice(
      period(STARTER, {
        adjustments: [{ adjustment_id: 'late-1', description: 'Late API usage', amount: '2.345', period_start: iso('2023-12-01'), period_end: iso('2024-01-01') }],
        credits: [{ credit_id: 'goodwill', description: 'Goodwill credit', amount: '10' }],
      }),
    );
    expect(brief(inv)).toEqual(['base_fee 1 49.00', 'adjustment 1 2.35', 'credit 1 -10.00']);
    expect(inv.lines[1].period_start).toBe(iso('2023-12-01'));
    expect(inv.subtotal).toBe('41.35');
    checkInvoice(inv);
  });
});

describe('properties', () => {
  const plans = [STARTER, PRO, TEAM, FREE, HOSTING, RETAINER];
  const arbInput = fc.record({
    a: fc.integer({ min: 0, max: plans.length - 1 }),
    b: fc.integer({ min: 0, max: plans.length - 1 }),
    day: fc.integer({ min: 0, max: 29 }),
    seatsA: fc.integer({ min: 0, max: 30 }),
    seatsB: fc.integer({ min: 0, max: 30 }),
    api: fc.integer({ min: 0, max: 60000 }),
    storage: fc.integer({ min: 0, max: 500 }),
    build: fc.integer({ min: 0, max: 3000 }),
    prod: fc.integer({ min: 0, max: 400 }),
    preview: fc.integer({ min: 0, max: 900 }),
    hours: fc.integer({ min: 0, max: 10 }),
    change: fc.boolean(),
    tax: fc.option(fc.integer({ min: 0, max: 3000 })),
  });
  type ArbValue = typeof arbInput extends fc.Arbitrary<infer T> ? T : never;
  const build = (x: ArbValue): PeriodInvoiceInput => {
    const segments = [{ from: iso('2023-06-01'), plan: plans[x.a], seats: x.seatsA }];
    if (x.change) segments.push({ from: new Date(Date.UTC(2024, 3, 1 + x.day, 7)).toISOString(), plan: plans[x.b], seats: x.seatsB });
    const inPlans = new Set(segments.flatMap((s) => s.plan.products.map((p) => p.product_key)));
    const usage = [
      { product_key: 'api_calls', quantity: String(x.api) },
      { product_key: 'storage', quantity: String(x.storage) },
      { product_key: 'build_minutes', quantity: String(x.build) },
      { product_key: 'bandwidth', price_key: 'prod', quantity: String(x.prod) },
      { product_key: 'bandwidth', price_key: 'preview', quantity: String(x.preview) },
    ].filter((u) => inPlans.has(u.product_key));
    return {
      subscription_id: SUB,
      subscription_start: iso('2023-06-01'),
      period: april,
      segments,
      usage,
      on_demand: x.hours ? [{ charge_id: 'h', description: 'Hours', quantity: String(x.hours), unit_amount: '150', date: iso('2024-04-10') }] : [],
      ...(x.tax !== null ? { tax_rate: dec(x.tax).div(10000).toFixed() } : {}),
    };
  };

  it('lines sum to the subtotal, every line replays, usage lines are never negative, re-rating is identical', () => {
    fc.assert(
      fc.property(arbInput, (x) => {
        const input = build(x);
        const inv = ratePeriodInvoice(input);
        checkInvoice(inv);
        for (const l of inv.lines) if (l.type.startsWith('usage_')) expect(dec(l.amount).gte(0)).toBe(true);
        const again = ratePeriodInvoice(JSON.parse(JSON.stringify(input)));
        expect(JSON.stringify(again)).toBe(JSON.stringify(inv));
      }),
      { numRuns: 60 },
    );
  });

  it('an upgrade never lowers the period allowance (vs the old plan for the whole period)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 29 }), fc.integer({ min: 0, max: 50000 }), fc.integer({ min: 0, max: 50000 }), (day, oldA, newA) => {
        const mk = (a: number, fee: string): RatingPlanVersion => ({
          ...STARTER,
          products: [{ ...STARTER.products[0], price: { model: 'flat', amount: fee } } as never, { ...STARTER.products[1], allowance: String(a) } as never],
        });
        const inv = ratePeriodInvoice({
          subscription_id: SUB,
          subscription_start: iso('2023-06-01'),
          period: april,
          segments: [
            { from: iso('2023-06-01'), plan: mk(oldA, '49') },
            { from: new Date(Date.UTC(2024, 3, 1 + day)).toISOString(), plan: mk(newA, '99') }, // higher fee: an upgrade
          ],
          usage: [{ product_key: 'api_calls', quantity: '1' }],
        });
        expect(dec(inv.allowance[0].included).gte(oldA)).toBe(true);
      }),
      { numRuns: 100 },
    );
  });

  it('transition lines replay and the immediate invoice sums', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: plans.length - 1 }),
        fc.integer({ min: 0, max: plans.length - 1 }),
        fc.integer({ min: 0, max: 29 }),
        fc.constantFrom('prorated_immediately', 'prorated_next_invoice', 'difference_immediately', 'full_immediately' as const),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 20 }),
        (a, b, day, strategy, s1, s2) => {
          const t = rateTransition({
            subscription_id: SUB,
            subscription_start: iso('2023-06-01'),
            effective_at: new Date(Date.UTC(2024, 3, 1 + day, 12)).toISOString(),
            from: { plan: plans[a], seats: s1 },
            to: { plan: plans[b], seats: s2 },
            strategy: strategy as 'prorated_immediately',
          });
          if (t.immediate) checkInvoice(t.immediate);
          const all: RatedLine[] = [...(t.immediate?.lines ?? []), ...t.deferred_lines];
          for (const l of all) expect(replayLine(l.steps).amount).toBe(l.amount);
          if (a === b && s1 === s2) expect(all).toEqual([]);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('input checks and determinism', () => {
  it('refuses usage with a price key on an unkeyed product, a keyed product without one, and unknown products', () => {
    expect(() => ratePeriodInvoice(period(STARTER, { usage: [{ product_key: 'api_calls', price_key: 'prod', quantity: '1' }] }))).toThrow(/matches no price/);
    expect(() => ratePeriodInvoice(period(HOSTING, { usage: [{ product_key: 'bandwidth', quantity: '1' }] }))).toThrow(/needs a price_key/);
    expect(() => ratePeriodInvoice(period(STARTER, { usage: [{ product_key: 'gpu_hours', quantity: '1' }] }))).toThrow(/prices gpu_hours/);
    expect(() => ratePeriodInvoice(period(STARTER, { usage: [{ product_key: 'api_calls', quantity: '-1' }] }))).toThrow(/negative/);
  });

  it('refuses a period that is not a cycle, and a mid-cycle end that renews', () => {
    expect(() => ratePeriodInvoice(period(STARTER, { period: { start: iso('2024-01-05'), end: iso('2024-02-01') } }))).toThrow(/monthly cycle/);
    expect(() => ratePeriodInvoice(period(STARTER, { period: { start: iso('2024-01-01'), end: iso('2024-01-20') } }))).toThrow(/renews/);
    const cancelled = ratePeriodInvoice(period(STARTER, { period: { start: iso('2024-01-01'), end: iso('2024-01-20') }, renews: false, usage: [{ product_key: 'api_calls', quantity: '9000' }] }));
    // cancelled on Jan 20: allowance 10,000 × 19/31 = 6,129.03… → 2,870.96… over × 0.005 = 14.35
    expect(brief(cancelled)).toEqual(['usage_included 6129.032258064517 0.00', 'usage_overage 2870.967741935483 14.35']);
  });

  it('the order of on-demand charges, credits and usage entries in the input does not change the lines', () => {
    const charges = [
      { charge_id: 'b', description: 'Hours', quantity: '2', unit_amount: '150', date: iso('2024-01-10') },
      { charge_id: 'a', description: 'Incident', quantity: '1', unit_amount: '100', date: iso('2024-01-10') },
      { charge_id: 'c', description: 'Hours', quantity: '1', unit_amount: '150', date: iso('2024-01-03') },
    ];
    const usage = [
      { product_key: 'bandwidth', price_key: 'prod', quantity: '130' },
      { product_key: 'bandwidth', price_key: 'preview', quantity: '620' },
    ];
    const one = ratePeriodInvoice(period(HOSTING, { on_demand: charges, usage }));
    const two = ratePeriodInvoice(period(HOSTING, { on_demand: [...charges].reverse(), usage: [...usage].reverse() }));
    expect(two).toEqual(one);
    expect(one.lines.filter((l) => l.type === 'on_demand').map((l) => l.line_key)).toEqual(['on_demand:c', 'on_demand:a', 'on_demand:b']);
  });

  it('JPY rounds to whole yen', () => {
    const yen: RatingPlanVersion = {
      ...STARTER,
      currency: 'JPY',
      products: [
        { kind: 'recurring', product_key: 'fee', name: 'Plan', price: { model: 'flat', amount: '4900' } },
        { ...STARTER.products[1], price: { model: 'per_unit', unit_amount: '0.55' } } as never,
      ],
    };
    const inv = ratePeriodInvoice(period(yen, { usage: [{ product_key: 'api_calls', quantity: '10003' }], tax_rate: '0.1' }));
    // 3 × 0.55 = 1.65 → 2; subtotal 4,902; tax 490.2 → 490
    expect(brief(inv)).toEqual(['base_fee 1 4900', 'usage_included 10000 0', 'usage_overage 3 2']);
    expect([inv.subtotal, inv.tax?.amount, inv.total]).toEqual(['4902', '490', '5392']);
  });
});
