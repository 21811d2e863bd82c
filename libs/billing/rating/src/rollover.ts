/**
 * Rollover at period end (SPEC §2):
 *   carried = min(cap, max(0, allowance_of_P − usage drawn from P's own grant))
 * Only the period's own allowance rolls; rolled-over units never roll again, they expire. The
 * result is what an allowance ledger records: the new rollover grant, the expiry of every grant
 * whose last period is P (with its unused remainder), and the grants that live on.
 */
import { Decimal, dec } from '@closebook/money';
import { AllowanceGrant, Drawdown, GrantKind, validateGrants } from './allowance';
import { BillingPeriod, nextPeriod } from './billing-periods';
import { RatingError } from './errors';
import { Step, StepLog } from './steps';
import { cmpStr, iso, parseNonNegative, str, toMs, ZERO } from './util';

export interface RolloverConfig {
  enabled: boolean;
  /** Max units carried per carry (absolute units); null/absent: one allowance. */
  cap?: string | null;
  /** Cycles the carried units live (default 1: usable in the next cycle only). */
  expiry_periods?: number;
}

export interface RolloverInput {
  /** The period that just ended. */
  period: BillingPeriod;
  anchor_day: number;
  /** The grants drawn in P (as passed to drawDown). */
  grants: AllowanceGrant[];
  /** P's drawdown over `grants`. */
  drawdown: Pick<Drawdown, 'draws'>;
  config: RolloverConfig;
  /** One allowance: the full-cycle allowance in force at the end of P (the default cap). */
  one_allowance: string;
  /** Id for the new grant; default `${own grant id}:rollover`. */
  grant_id?: string;
}

export interface GrantExpiry {
  grant_id: string;
  kind: GrantKind;
  /** Start of the period after which it lapses (P). */
  period: string;
  /** Not drawn by the end of P. */
  unused: string;
  /** Part of `unused` carried into a new rollover grant (own period grants only). */
  carried: string;
  /** unused − carried: what lapses. */
  expired: string;
  carried_to: string | null;
}

export interface RolloverResult {
  carried: Decimal;
  cap: Decimal;
  /** allowance_of_P − drawn from it (may be 0). */
  own_unused: Decimal;
  /** The new rollover grant, or null when nothing is carried. */
  grant: AllowanceGrant | null;
  expiries: GrantExpiry[];
  /** Grants still live next period (drawn_before updated), plus the new grant. */
  continuing: AllowanceGrant[];
  steps: Step[];
}

export function rollover(input: RolloverInput): RolloverResult {
  validateGrants(input.grants);
  const ps = toMs(input.period.start, 'period.start');
  const pStart = iso(ps);
  const expiry = input.config.expiry_periods ?? 1;
  if (!Number.isInteger(expiry) || expiry < 1 || expiry > 120) {
    throw new RatingError('invalid_rollover_expiry', 'rollover_expiry_periods must be an integer 1..120', 'rollover_expiry_periods');
  }
  const drawnOf = new Map<string, Decimal>();
  for (const d of input.drawdown.draws) drawnOf.set(d.grant_id, dec(d.drawn));

  const own = input.grants
    .filter((g) => g.kind === 'period' && toMs(g.granted_in_period) === ps)
    .sort((a, b) => cmpStr(a.grant_id, b.grant_id));

  const log = new StepLog();
  const ownQty = own.reduce((a, g) => a.plus(parseNonNegative(g.quantity, 'quantity')), ZERO);
  const ownDrawn = own.reduce((a, g) => a.plus(drawnOf.get(g.grant_id) ?? ZERO), ZERO);
  const allowance = log.add('input', { value: ownQty }, `allowance of the period starting ${pStart.slice(0, 10)}`, 'allowance_of_period');
  const drawn = log.add('input', { value: ownDrawn }, 'usage drawn from it (after any rollover grants)', 'drawn_from_own');
  const diff = log.add('difference', { minuend: allowance, subtrahend: drawn }, 'unused own allowance', 'own_unused_raw');
  const unused = log.add('max', { own_unused_raw: diff, zero: '0' }, 'never negative', 'own_unused');
  const capDefault = input.config.cap === undefined || input.config.cap === null;
  const capValue = capDefault ? parseNonNegative(input.one_allowance, 'one_allowance') : parseNonNegative(input.config.cap, 'rollover_cap');
  const cap = log.add('input', { value: capValue }, capDefault ? 'rollover cap: one allowance (default)' : 'rollover cap', 'cap');
  const carried = input.config.enabled
    ? log.add('min', { own_unused: unused, cap }, `carried into the next cycle, usable for ${expiry} cycle(s)`, 'carried')
    : log.add('input', { value: '0' }, 'rollover is not enabled for this dimension', 'carried');

  // The new grant lives from P+1 to P+expiry.
  let grant: AllowanceGrant | null = null;
  if (carried.value.gt(0)) {
    const next = nextPeriod(input.period, input.anchor_day);
    let last = next;
    for (let i = 1; i < expiry; i++) last = nextPeriod(last, input.anchor_day);
    const first = own[0];
    grant = {
      grant_id: input.grant_id ?? `${first.grant_id}:rollover`,
      kind: 'rollover',
      quantity: str(carried.value),
      granted_in_period: next.start,
      expires_after_period: last.start,
      carried_from_period: pStart,
      ...(first.product_key !== undefined ? { product_key: first.product_key } : {}),
      ...(first.price_key !== undefined ? { price_key: first.price_key } : {}),
    };
  }

  const expiries: GrantExpiry[] = [];
  const continuing: AllowanceGrant[] = [];
  let carryLeft = carried.value;
  for (const g of [...input.grants].sort((a, b) => cmpStr(a.grant_id, b.grant_id))) {
    const q = parseNonNegative(g.quantity, 'quantity');
    const before = g.drawn_before === undefined ? ZERO : dec(g.drawn_before);
    const drawnNow = drawnOf.get(g.grant_id) ?? ZERO;
    const remaining = q.minus(before).minus(drawnNow);
    if (remaining.isNegative() && !remaining.isZero()) {
      throw new RatingError('overdrawn_grant', `grant ${g.grant_id} was drawn beyond its quantity`, 'drawdown');
    }
    if (toMs(g.expires_after_period) <= ps) {
      const isOwn = own.includes(g);
      const c = isOwn ? Decimal.min(carryLeft, remaining) : ZERO;
      if (isOwn) carryLeft = carryLeft.minus(c);
      expiries.push({
        grant_id: g.grant_id,
        kind: g.kind,
        period: pStart,
        unused: str(remaining),
        carried: str(c),
        expired: str(remaining.minus(c)),
        carried_to: c.gt(0) && grant ? grant.grant_id : null,
      });
    } else {
      continuing.push({ ...g, drawn_before: str(before.plus(drawnNow)) });
    }
  }
  if (grant) continuing.push(grant);
  return { carried: carried.value, cap: cap.value, own_unused: unused.value, grant, expiries, continuing, steps: log.steps };
}
