/**
 * Usage rating for one metered dimension of one subscription period (SPEC §1–§4): the quantity per
 * price key draws on that key's grants (rollover first, oldest first, then the period allowance);
 * what is left is overage, priced by the key's model (the plan in force at period end) unless the
 * dimension is a capped free tier (`overage: 'block'`).
 */
import { dec, Money, roundHalfUp } from '@closebook/money';
import { AllowanceGrant, applyOverageMode, drawInto, Drawdown, liveGrants, OverageMode } from './allowance';
import { BillingPeriod } from './billing-periods';
import { RatingError } from './errors';
import { finishLine, RatedLine } from './lines';
import { assertPeriod } from './proration';
import { assertValidPriceModel, describePriced, PriceModel, priceInto } from './price-models';
import { Step, StepLog, Val } from './steps';
import { cmpStr, currencyOf, fmtQty, iso, parseNonNegative, str, toMs, ZERO } from './util';

export interface UsageKeyInput {
  /** The price key value (`prod`), or null for an unkeyed dimension. */
  key: string | null;
  /** Aggregated usage of the period (the rollup). */
  quantity: string;
  /** The key's price in the plan in force at period end. */
  price: PriceModel;
  /** The key's grants; only those live in the period are drawn. */
  grants: AllowanceGrant[];
  /** Derivation of the period grant (PeriodAllowance.steps), shown in front of the drawdown. */
  allowance_steps?: Step[];
  /** The grant whose quantity `allowance_steps` produced (their `period_allowance`). */
  period_grant_id?: string;
}

export interface UsageRatingInput {
  product_key: string;
  product_name: string;
  /** Display unit: "calls", "GB". */
  unit: string;
  /** E.g. "environment" for keyed prices. */
  price_key_label?: string | null;
  period: BillingPeriod;
  currency: string;
  overage?: OverageMode;
  keys: UsageKeyInput[];
}

export interface AllowanceState {
  product_key: string;
  price_key: string | null;
  unit: string;
  /** The period's own allowance. */
  included: string;
  /** Rolled-over units available in the period. */
  rolled_over: string;
  used: string;
  /** included + rolled_over − drawn (never negative). */
  remaining: string;
  /** used ÷ (included + rolled_over) × 100, rounded half-up to 2 decimals; null when nothing is included. */
  percent_used: string | null;
  overage_quantity: string;
  /** Quantity billed as overage (0 when capped). */
  billable_quantity: string;
  /** Rounded amount of the overage line. */
  billable_usage: { amount: string; currency: string };
  capped: boolean;
}

export interface KeyRating {
  key: string | null;
  drawdown: Omit<Drawdown, 'steps' | 'usage' | 'available' | 'included_used' | 'overage_quantity'> & {
    usage: string;
    available: string;
    included_used: string;
    overage_quantity: string;
  };
}

export interface UsageRating {
  product_key: string;
  lines: RatedLine[];
  states: AllowanceState[];
  keys: KeyRating[];
  /** Σ rounded overage lines. */
  billable_usage: { amount: string; currency: string };
}

function keyPart(label: string | null | undefined, key: string | null): string {
  if (key === null) return '';
  return label ? ` (${label}: ${key})` : ` (${key})`;
}

function lineKeyPart(productKey: string, key: string | null): string {
  return `${productKey}:${key === null ? '-' : key}`;
}

/** Rates one metered dimension; lines come in key order (unkeyed first, then keys ascending). */
export function rateUsage(input: UsageRatingInput): UsageRating {
  const cur = currencyOf(input.currency);
  const mode: OverageMode = input.overage ?? 'bill';
  if (mode !== 'bill' && mode !== 'block') throw new RatingError('invalid_overage_mode', 'overage must be bill or block', 'overage');
  const ps = toMs(input.period.start, 'period.start');
  const pe = toMs(input.period.end, 'period.end');
  assertPeriod(ps, pe);
  const period = { start: iso(ps), end: iso(pe) };
  if (!Array.isArray(input.keys)) throw new RatingError('invalid_usage', 'keys must be an array', 'keys');
  const seenKeys = new Set<string>();
  const keys = [...input.keys].sort((a, b) => (a.key === null ? -1 : b.key === null ? 1 : cmpStr(a.key, b.key)));
  const lines: RatedLine[] = [];
  const states: AllowanceState[] = [];
  const keyRatings: KeyRating[] = [];
  let billableTotal = Money.zero(cur);

  keys.forEach((k) => {
    const kid = k.key === null ? '\u0000null' : k.key;
    if (seenKeys.has(kid)) throw new RatingError('duplicate_price_key', `price key ${String(k.key)} is listed twice`, 'keys');
    seenKeys.add(kid);
    const field = `keys[${input.keys.indexOf(k)}]`;
    const usage = parseNonNegative(k.quantity, `${field}.quantity`);
    assertValidPriceModel(k.price, { field: `${field}.price` });
    const grants = liveGrants(k.grants ?? [], period.start);
    const name = `${input.product_name}${keyPart(input.price_key_label, k.key)}`;

    /** The shared head of both lines: allowance derivation, usage, drawdown. */
    const head = () => {
      const log = new StepLog();
      const refs = new Map<string, Val>();
      if (k.allowance_steps?.length) {
        log.append(k.allowance_steps);
        const last = [...k.allowance_steps].reverse().find((s) => s.name === 'period_allowance');
        if (last && k.period_grant_id) refs.set(k.period_grant_id, { name: 'period_allowance', value: dec(last.result) });
      }
      const u = log.add('input', { value: usage }, `${name}: ${fmtQty(usage)} ${input.unit} metered in the period`, 'usage');
      const dd = drawInto(log, grants, u, refs);
      return { log, u, dd };
    };

    const probe = head();
    const dd = probe.dd;
    const rolled = grants.filter((g) => g.kind === 'rollover');
    const rolledAvail = dd.draws.filter((d) => d.kind === 'rollover').reduce((a, d) => a.plus(dec(d.available)), ZERO);
    const ownAvail = dd.available.minus(rolledAvail);
    const { billable, capped } = applyOverageMode(usage, dd.available, dd.overage_quantity, mode);
    const availableTxt = dd.available.gt(0) ? fmtQty(dd.available) : '';
    const rolledTxt = rolled.length && rolledAvail.gt(0) ? ` (${fmtQty(rolledAvail)} rolled over)` : '';
    const overHead = availableTxt ? `${name} over ${availableTxt} included${rolledTxt}` : name;

    // usage_included: quantity drawn from the allowance at 0.
    if (dd.included_used.gt(0)) {
      const { log } = head();
      const used: Val = { name: 'included_used', value: dd.included_used };
      const exact = log.add('product', { quantity: used, unit_amount: '0' }, 'included usage is not charged', 'amount_exact');
      lines.push(
        finishLine(log, exact, cur, {
          line_key: `usage_included:${lineKeyPart(input.product_key, k.key)}`,
          type: 'usage_included',
          product_key: input.product_key,
          price_key: k.key,
          period_start: period.start,
          period_end: period.end,
          quantity: str(dd.included_used),
          unit_amount: '0',
          description: `${name} included: ${fmtQty(dd.included_used)} of ${availableTxt} ${input.unit}${rolledTxt}`,
          meta: { included: str(ownAvail), rolled_over: str(rolledAvail), used: str(usage) },
        }),
      );
    }

    // usage_overage: billable quantity priced by the model (0 and capped for a blocked dimension).
    let overageAmount = Money.zero(cur);
    if (dd.overage_quantity.gt(0)) {
      const { log } = head();
      const over: Val = { name: 'overage_quantity', value: dd.overage_quantity };
      const bq = log.add(
        'overage_mode',
        { quantity: over, mode },
        mode === 'block' ? 'capped free tier: usage above the allowance is recorded, never billed' : 'overage is billed',
        'billable_quantity',
      );
      let line: RatedLine;
      if (mode === 'block') {
        const exact = log.add('product', { quantity: bq, unit_amount: '0' }, 'nothing billed above the cap', 'amount_exact');
        line = finishLine(log, exact, cur, {
          line_key: `usage_overage:${lineKeyPart(input.product_key, k.key)}`,
          type: 'usage_overage',
          product_key: input.product_key,
          price_key: k.key,
          period_start: period.start,
          period_end: period.end,
          quantity: '0',
          unit_amount: '0',
          price: k.price,
          description: `${overHead}: ${fmtQty(dd.overage_quantity)} ${input.unit} not billed (capped)`,
          meta: { capped: true, unbilled_quantity: str(dd.overage_quantity), used: str(usage) },
        });
      } else {
        const r = priceInto(log, k.price, bq, cur);
        line = finishLine(log, r.amount, cur, {
          line_key: `usage_overage:${lineKeyPart(input.product_key, k.key)}`,
          type: 'usage_overage',
          product_key: input.product_key,
          price_key: k.key,
          period_start: period.start,
          period_end: period.end,
          quantity: str(billable),
          unit_amount: r.unit_amount && k.price.model === 'per_unit' ? str(r.unit_amount) : null,
          tiers: r.tiers ?? null,
          price: k.price,
          description: describePriced(overHead, bq.value, input.unit, k.price, r, cur),
          meta: { capped: false, used: str(usage), ...(r.packages ? { packages: str(r.packages) } : {}) },
        });
      }
      lines.push(line);
      overageAmount = Money.parse(line.amount, cur);
      billableTotal = billableTotal.plus(overageAmount);
    }

    const remaining = dd.available.minus(dd.included_used);
    states.push({
      product_key: input.product_key,
      price_key: k.key,
      unit: input.unit,
      included: str(ownAvail),
      rolled_over: str(rolledAvail),
      used: str(usage),
      remaining: str(remaining),
      percent_used: dd.available.gt(0) ? roundHalfUp(usage.times(100).div(dd.available), 2).toFixed(2) : null,
      overage_quantity: str(dd.overage_quantity),
      billable_quantity: str(billable),
      billable_usage: { amount: overageAmount.format(), currency: cur.code },
      capped,
    });
    keyRatings.push({
      key: k.key,
      drawdown: {
        usage: str(dd.usage),
        available: str(dd.available),
        included_used: str(dd.included_used),
        overage_quantity: str(dd.overage_quantity),
        draws: dd.draws,
      },
    });
  });

  return {
    product_key: input.product_key,
    lines,
    states,
    keys: keyRatings,
    billable_usage: { amount: billableTotal.format(), currency: cur.code },
  };
}
