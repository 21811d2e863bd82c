import { z } from 'zod';
import { paginationQuery, PRORATION_STRATEGIES, ValidationError } from '@closebook/platform';
import {
  ALLOWANCE_BASES,
  METER_AGGREGATIONS,
  OVERAGE_MODES,
  PLAN_INTERVALS,
  PLAN_VERSION_STATUSES,
  PRODUCT_KINDS,
  type PlanVersionWithPlan,
  type PlanWithVersions,
  type Product,
} from '@closebook/catalog';

/** Keys appear in URLs: letters, digits, "_", "." and "-". */
export const catalogKey = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, { message: 'must be 1-100 letters, digits, "_", "." or "-", starting with a letter or digit' });

const name = z.string().trim().min(1).max(200);

// ---------------------------------------------------------------------------------------------
// Products

export const createProductBody = z
  .object({
    key: catalogKey,
    name,
    kind: z.enum(PRODUCT_KINDS),
    unit: z.string().trim().min(1).max(50).optional(),
    meter: z
      .object({
        event_name: z.string().min(1).max(200),
        aggregation: z.enum(METER_AGGREGATIONS),
        property: z.string().min(1).max(200).optional(),
        filter: z
          .record(z.string().min(1).max(200), z.union([z.string().max(1000), z.number(), z.boolean()]))
          .refine((f) => Object.keys(f).length <= 20, { message: 'at most 20 conditions' })
          .optional()
          .meta({ description: 'Equality conditions on event properties ({"region": "eu"}); all must match' }),
      })
      .strict()
      .optional()
      .meta({ description: 'Required for metered products, refused for other kinds' }),
    price_key_label: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .meta({ description: 'Metered only: the event property keyed prices price by (e.g. "environment")' }),
  })
  .strict();

export const listProductsQuery = z.object({ ...paginationQuery, kind: z.enum(PRODUCT_KINDS).optional() }).strict();

export const productView = z.object({
  id: z.string(),
  key: z.string(),
  name: z.string(),
  kind: z.enum(PRODUCT_KINDS),
  unit: z.string().nullable(),
  meter: z
    .object({
      event_name: z.string(),
      aggregation: z.enum(METER_AGGREGATIONS),
      property: z.string().nullable(),
      filter: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).nullable(),
    })
    .nullable(),
  price_key_label: z.string().nullable(),
  created_at: z.string(),
});

export const presentProduct = (p: Product): z.infer<typeof productView> => ({
  id: p.id,
  key: p.key,
  name: p.name,
  kind: p.kind,
  unit: p.unit ?? null,
  meter:
    p.kind === 'metered' && p.meterEventName && p.meterAggregation
      ? { event_name: p.meterEventName, aggregation: p.meterAggregation, property: p.meterProperty ?? null, filter: p.meterFilter ?? null }
      : null,
  price_key_label: p.priceKeyLabel ?? null,
  created_at: p.createdAt.toISOString(),
});

// ---------------------------------------------------------------------------------------------
// Plans

export const createPlanBody = z
  .object({
    key: catalogKey,
    name,
    currency: z.string().meta({ description: 'ISO 4217 code, e.g. "USD"' }),
    interval: z.enum(PLAN_INTERVALS),
    allowance_rollover_default: z.boolean().optional(),
    proration_strategy: z.enum(PRORATION_STRATEGIES).nullable().optional(),
  })
  .strict();

const versionSummary = z.object({ version: z.number(), status: z.enum(PLAN_VERSION_STATUSES), published_at: z.string().nullable(), created_at: z.string() });

export const planView = z.object({
  id: z.string(),
  key: z.string(),
  name: z.string(),
  currency: z.string(),
  interval: z.enum(PLAN_INTERVALS),
  allowance_rollover_default: z.boolean(),
  proration_strategy: z.enum(PRORATION_STRATEGIES).nullable(),
  latest_published_version: z.number().nullable(),
  versions: z.array(versionSummary),
  created_at: z.string(),
});

export const presentPlan = ({ plan, versions }: PlanWithVersions): z.infer<typeof planView> => {
  const published = versions.filter((v) => v.status === 'published');
  return {
    id: plan.id,
    key: plan.key,
    name: plan.name,
    currency: plan.currency,
    interval: plan.interval,
    allowance_rollover_default: plan.allowanceRolloverDefault,
    proration_strategy: plan.prorationStrategy ?? null,
    latest_published_version: published.length ? published[published.length - 1].version : null,
    versions: versions.map((v) => ({
      version: v.version,
      status: v.status,
      published_at: v.publishedAt ? v.publishedAt.toISOString() : null,
      created_at: v.createdAt.toISOString(),
    })),
    created_at: plan.createdAt.toISOString(),
  };
};

// ---------------------------------------------------------------------------------------------
// Plan versions

const priceInput = z.record(z.string(), z.unknown()).meta({
  description:
    'A price model: {"model": "flat", "amount": "49"}, {"model": "per_unit", "unit_amount": "0.005"}, {"model": "package", "package_size": "1000", "package_amount": "0.10"}, ' +
    '{"model": "graduated" | "volume", "tiers": [{"up_to": "10000" | null, "unit_amount": "0.01", "flat_amount"?: "5"}]}; decimals are strings. ' +
    'It may declare its "currency", which must be the plan\'s.',
});

const versionProduct = z
  .object({
    product_key: catalogKey,
    allowance: z.string().optional().meta({ description: 'Metered: included quantity per usage cycle (decimal string), default "0"' }),
    allowance_basis: z.enum(ALLOWANCE_BASES).optional(),
    rollover_enabled: z.boolean().optional().meta({ description: "Default: the plan's allowance_rollover_default" }),
    rollover_cap: z.string().nullable().optional().meta({ description: 'Max units carried; default one allowance' }),
    rollover_expiry_periods: z.number().int().optional(),
    overage: z.enum(OVERAGE_MODES).optional(),
    included_seats: z.number().int().optional().meta({ description: 'Seat products: seats included in the plan fee, default 0' }),
    price: priceInput.optional(),
    keyed_prices: z
      .array(z.object({ key: z.string().min(1).max(200), price: priceInput, allowance: z.string().optional() }).strict())
      .optional()
      .meta({ description: 'Metered products with a price_key_label: one price (and allowance) per key value; "*" prices any other value' }),
  })
  .strict();

const versionFields = {
  allowance_multiplier: z.string().optional().meta({ description: 'E.g. "1.2": 20% more allowance every cycle; default "1"' }),
  products: z.array(versionProduct).min(1).max(200),
};

export const createVersionBody = z
  .object({ ...versionFields, publish: z.boolean().default(true).meta({ description: 'Publish (freeze) at once; false keeps a draft' }) })
  .strict();
export const updateVersionBody = z.object(versionFields).strict();

export const planVersionView = z.object({
  id: z.string(),
  plan_id: z.string(),
  plan_key: z.string(),
  version: z.number(),
  status: z.enum(PLAN_VERSION_STATUSES),
  published_at: z.string().nullable(),
  currency: z.string(),
  interval: z.enum(PLAN_INTERVALS),
  allowance_multiplier: z.string(),
  products: z.array(z.record(z.string(), z.unknown())),
  document: z.record(z.string(), z.unknown()).meta({ description: 'The RatingPlanVersion document rating reads (libs/billing/rating/README.md)' }),
  created_at: z.string(),
});

export const presentPlanVersion = ({ plan, version, productIds }: PlanVersionWithPlan): z.infer<typeof planVersionView> => ({
  id: version.id,
  plan_id: plan.id,
  plan_key: plan.key,
  version: version.version,
  status: version.status,
  published_at: version.publishedAt ? version.publishedAt.toISOString() : null,
  currency: version.document.currency,
  interval: version.document.interval,
  allowance_multiplier: version.document.allowance_multiplier ?? '1',
  products: version.document.products.map((p) => ({ product_id: productIds[p.product_key] ?? null, ...p })),
  document: version.document as unknown as Record<string, unknown>,
  created_at: version.createdAt.toISOString(),
});

/** The `{n}` of a versions route. */
export function parseVersionNumber(n: string): number {
  if (!/^[1-9]\d{0,8}$/.test(n)) throw new ValidationError('invalid_version', 'the version must be a positive integer', 'version');
  return Number(n);
}
