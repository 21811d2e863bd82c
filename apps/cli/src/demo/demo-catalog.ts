/**
 * The demo's catalog: a developer-platform SaaS with a capped free tier (Hobby), Pro monthly and
 * yearly, and Team with per-seat allowances; six metered dimensions, one of them keyed by
 * environment; seats; two add-ons; an on-demand consulting product.
 */
export const DEMO_CURRENCY = 'USD';

export const PRODUCTS = [
  { key: 'platform_fee', name: 'Platform fee', kind: 'recurring' },
  { key: 'seats', name: 'Seats', kind: 'seat' },
  { key: 'sso', name: 'SAML single sign-on', kind: 'addon' },
  { key: 'priority_support', name: 'Priority support', kind: 'addon' },
  { key: 'consulting', name: 'Consulting', kind: 'one_time' },
  {
    key: 'api_calls',
    name: 'API calls',
    kind: 'metered',
    unit: 'calls',
    meter: { event_name: 'api.requests', aggregation: 'sum', property: 'count' },
    price_key_label: 'environment',
  },
  { key: 'bandwidth', name: 'Bandwidth', kind: 'metered', unit: 'GB', meter: { event_name: 'cdn.transfer', aggregation: 'sum', property: 'gb' } },
  { key: 'build_minutes', name: 'Build minutes', kind: 'metered', unit: 'build-minutes', meter: { event_name: 'build.finished', aggregation: 'sum', property: 'minutes' } },
  { key: 'storage', name: 'Storage', kind: 'metered', unit: 'GB', meter: { event_name: 'storage.snapshot', aggregation: 'max', property: 'gb' } },
  { key: 'active_users', name: 'Monthly active users', kind: 'metered', unit: 'users', meter: { event_name: 'auth.login', aggregation: 'unique_count', property: 'user_id' } },
  { key: 'deploys', name: 'Production deploys', kind: 'metered', unit: 'deploys', meter: { event_name: 'deploy.created', aggregation: 'count', filter: { target: 'production' } } },
] as const;

const flat = (amount: string) => ({ model: 'flat', amount });
const perUnit = (unit_amount: string) => ({ model: 'per_unit', unit_amount });

export const PLANS = [
  {
    plan: { key: 'hobby', name: 'Hobby', currency: DEMO_CURRENCY, interval: 'month', allowance_rollover_default: false },
    version: {
      products: [
        { product_key: 'platform_fee', price: flat('0') },
        { product_key: 'api_calls', overage: 'block', keyed_prices: [{ key: '*', allowance: '100000', price: perUnit('0') }] },
        { product_key: 'bandwidth', allowance: '10', overage: 'block', price: perUnit('0') },
        { product_key: 'build_minutes', allowance: '300', overage: 'block', price: perUnit('0') },
        { product_key: 'storage', allowance: '1', overage: 'block', price: perUnit('0') },
        { product_key: 'active_users', allowance: '1000', overage: 'block', price: perUnit('0') },
        { product_key: 'deploys', allowance: '100', overage: 'block', price: perUnit('0') },
      ],
    },
  },
  {
    plan: { key: 'pro', name: 'Pro', currency: DEMO_CURRENCY, interval: 'month', allowance_rollover_default: true },
    version: {
      products: [
        { product_key: 'platform_fee', price: flat('49') },
        { product_key: 'seats', included_seats: 3, price: perUnit('15') },
        { product_key: 'sso', price: flat('25') },
        { product_key: 'priority_support', price: flat('99') },
        {
          product_key: 'api_calls',
          keyed_prices: [
            { key: 'production', allowance: '1000000', price: perUnit('0.0005') },
            { key: 'preview', allowance: '250000', price: perUnit('0.0002') },
          ],
        },
        {
          product_key: 'bandwidth',
          allowance: '100',
          price: {
            model: 'graduated',
            tiers: [
              { up_to: '1000', unit_amount: '0.15' },
              { up_to: null, unit_amount: '0.10' },
            ],
          },
        },
        { product_key: 'build_minutes', allowance: '3000', rollover_cap: '3000', rollover_expiry_periods: 1, price: perUnit('0.01') },
        { product_key: 'storage', allowance: '50', rollover_enabled: false, price: perUnit('0.25') },
        { product_key: 'active_users', allowance: '10000', rollover_enabled: false, price: { model: 'package', package_size: '1000', package_amount: '10' } },
        { product_key: 'deploys', allowance: '1000', rollover_enabled: false, price: perUnit('0.05') },
      ],
    },
  },
  {
    plan: { key: 'pro_yearly', name: 'Pro (yearly)', currency: DEMO_CURRENCY, interval: 'year', allowance_rollover_default: true },
    version: {
      allowance_multiplier: '1.2',
      products: [
        { product_key: 'platform_fee', price: flat('490') },
        { product_key: 'seats', included_seats: 3, price: perUnit('150') },
        {
          product_key: 'api_calls',
          keyed_prices: [
            { key: 'production', allowance: '1000000', price: perUnit('0.0005') },
            { key: 'preview', allowance: '250000', price: perUnit('0.0002') },
          ],
        },
        { product_key: 'bandwidth', allowance: '100', price: perUnit('0.15') },
        { product_key: 'build_minutes', allowance: '3000', price: perUnit('0.01') },
        { product_key: 'storage', allowance: '50', rollover_enabled: false, price: perUnit('0.25') },
        { product_key: 'active_users', allowance: '10000', rollover_enabled: false, price: { model: 'package', package_size: '1000', package_amount: '10' } },
        { product_key: 'deploys', allowance: '1000', rollover_enabled: false, price: perUnit('0.05') },
      ],
    },
  },
  {
    plan: { key: 'team', name: 'Team', currency: DEMO_CURRENCY, interval: 'month', allowance_rollover_default: false, proration_strategy: 'prorated_next_invoice' },
    version: {
      products: [
        { product_key: 'platform_fee', price: flat('99') },
        { product_key: 'seats', included_seats: 0, price: perUnit('20') },
        { product_key: 'sso', price: flat('0') },
        { product_key: 'priority_support', price: flat('79') },
        {
          product_key: 'api_calls',
          keyed_prices: [
            { key: 'production', allowance: '5000000', price: { model: 'volume', tiers: [{ up_to: '10000000', unit_amount: '0.0004' }, { up_to: null, unit_amount: '0.0003' }] } },
            { key: '*', allowance: '1000000', price: perUnit('0.0001') },
          ],
        },
        { product_key: 'bandwidth', allowance: '5', allowance_basis: 'per_seat', price: perUnit('2') },
        { product_key: 'build_minutes', allowance: '1000', allowance_basis: 'per_seat', rollover_enabled: true, price: perUnit('0.008') },
        { product_key: 'storage', allowance: '200', price: perUnit('0.20') },
        { product_key: 'active_users', allowance: '50000', price: { model: 'package', package_size: '1000', package_amount: '8' } },
        { product_key: 'deploys', allowance: '5000', price: perUnit('0.02') },
      ],
    },
  },
] as const;

/** How many customers take each plan at the start of the first month. */
export const PLAN_MIX: Record<string, number> = { hobby: 0.55, pro: 0.3, pro_yearly: 0.08, team: 0.07 };
