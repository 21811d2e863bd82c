/** Plans used by the rating specs (SPEC §10 and friends). Not exported from the package. */
import type { RatingPlanVersion } from '../plan';

export const iso = (day: string) => `${day}T00:00:00.000Z`;

/** $49/mo incl. 10,000 API calls, $0.005/call over. */
export const STARTER: RatingPlanVersion = {
  plan_key: 'starter',
  version: 1,
  name: 'Starter',
  currency: 'USD',
  interval: 'month',
  products: [
    { kind: 'recurring', product_key: 'starter_fee', name: 'Starter plan', price: { model: 'flat', amount: '49' } },
    {
      kind: 'metered',
      product_key: 'api_calls',
      name: 'API calls',
      unit: 'calls',
      allowance: '10000',
      price: { model: 'per_unit', unit_amount: '0.005' },
    },
  ],
};

/** $99/mo incl. 20,000 API calls at $0.004 over; 3 seats included, $15 per extra seat. */
export const PRO: RatingPlanVersion = {
  plan_key: 'pro',
  version: 1,
  name: 'Pro',
  currency: 'USD',
  interval: 'month',
  products: [
    { kind: 'recurring', product_key: 'pro_fee', name: 'Pro plan', price: { model: 'flat', amount: '99' } },
    { kind: 'seat', product_key: 'seats', name: 'Seats', included_seats: 3, price: { model: 'per_unit', unit_amount: '15' } },
    {
      kind: 'metered',
      product_key: 'api_calls',
      name: 'API calls',
      unit: 'calls',
      allowance: '20000',
      price: { model: 'per_unit', unit_amount: '0.004' },
    },
  ],
};

/** $20 per user, 5 GB per user included, $2/GB over. */
export const TEAM: RatingPlanVersion = {
  plan_key: 'team',
  version: 1,
  name: 'Team',
  currency: 'USD',
  interval: 'month',
  products: [
    { kind: 'seat', product_key: 'users', name: 'Users', included_seats: 0, price: { model: 'per_unit', unit_amount: '20' } },
    {
      kind: 'metered',
      product_key: 'storage',
      name: 'Storage',
      unit: 'GB',
      allowance: '5',
      allowance_basis: 'per_seat',
      price: { model: 'per_unit', unit_amount: '2' },
    },
  ],
};

/** Retainer $199 incl. 5 h (on-demand $150/h and $100/incident are charges). */
export const RETAINER: RatingPlanVersion = {
  plan_key: 'retainer',
  version: 1,
  name: 'Retainer',
  currency: 'USD',
  interval: 'month',
  products: [{ kind: 'recurring', product_key: 'retainer_fee', name: 'Retainer (5 h included)', price: { model: 'flat', amount: '199' } }],
};

/** Free tier: 1,000 builds-minutes, capped (block). */
export const FREE: RatingPlanVersion = {
  plan_key: 'free',
  version: 1,
  name: 'Free',
  currency: 'USD',
  interval: 'month',
  products: [
    { kind: 'recurring', product_key: 'free_fee', name: 'Free plan', price: { model: 'flat', amount: '0' } },
    {
      kind: 'metered',
      product_key: 'build_minutes',
      name: 'Build minutes',
      unit: 'build-minutes',
      allowance: '1000',
      overage: 'block',
      price: { model: 'per_unit', unit_amount: '0.01' },
    },
  ],
};

/** Keyed prices: deployments priced by environment, each with its own allowance. */
export const HOSTING: RatingPlanVersion = {
  plan_key: 'hosting',
  version: 2,
  name: 'Hosting',
  currency: 'USD',
  interval: 'month',
  products: [
    { kind: 'recurring', product_key: 'hosting_fee', name: 'Hosting plan', price: { model: 'flat', amount: '20' } },
    {
      kind: 'metered',
      product_key: 'bandwidth',
      name: 'Bandwidth',
      unit: 'GB',
      price_key_label: 'environment',
      keyed_prices: [
        { key: 'prod', price: { model: 'per_unit', unit_amount: '0.10' }, allowance: '100' },
        { key: 'preview', price: { model: 'per_unit', unit_amount: '0.02' }, allowance: '500' },
      ],
    },
  ],
};

/** A yearly plan: $1,188/yr incl. 10,000 calls a month (×1.2 multiplier), $0.005 over. */
export const STARTER_YEARLY: RatingPlanVersion = {
  ...STARTER,
  plan_key: 'starter_yearly',
  name: 'Starter yearly',
  interval: 'year',
  allowance_multiplier: '1.2',
  products: [
    { kind: 'recurring', product_key: 'starter_fee', name: 'Starter plan', price: { model: 'flat', amount: '1188' } },
    STARTER.products[1],
  ],
};
