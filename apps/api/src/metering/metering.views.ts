import { z } from 'zod';
import { MAX_EVENTS_PER_BATCH, MAX_EVENT_ID_LENGTH, parseIngestBody } from '@closebook/metering';
import { ZodPipe } from '@closebook/platform';

const propertyValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

/** The documented shape of a batch; items are checked one by one by hand (see IngestBodyPipe). */
export const ingestBody = z
  .object({
    events: z
      .array(
        z
          .object({
            event_id: z.string().min(1).max(MAX_EVENT_ID_LENGTH).meta({ description: 'Idempotency key: the same event_id counts once, ever' }),
            customer_id: z.string().min(1).max(255).meta({ description: "The customer's external_id" }),
            event_name: z.string().min(1).max(200),
            timestamp: z.string().meta({ description: 'ISO 8601 with seconds and a zone; at most 5 minutes in the future' }),
            properties: z.record(z.string(), propertyValue).optional().meta({
              description: 'Strings, numbers, booleans or null. Quantities are exact decimals: send "12.5" (or a JSON number with at most 15 significant digits)',
            }),
          })
          .strict(),
      )
      .max(MAX_EVENTS_PER_BATCH),
  })
  .strict();

/**
 * A ZodPipe (so the OpenAPI document shows `ingestBody`) whose transform only checks the envelope:
 * each of up to 10,000 items is validated by hand in IngestService, where a bad item is rejected
 * with its index and reason instead of failing the whole batch with a 400.
 */
export class IngestBodyPipe extends ZodPipe<typeof ingestBody> {
  constructor() {
    super(ingestBody, 'body');
  }
  override transform(value: unknown): z.infer<typeof ingestBody> {
    return parseIngestBody(value) as z.infer<typeof ingestBody>;
  }
}

export const ingestResult = z.object({
  accepted: z.number().int(),
  duplicates: z.number().int(),
  rejected: z.array(z.object({ index: z.number().int(), event_id: z.string().nullable(), code: z.string(), reason: z.string() })),
});

const money = z.object({ amount: z.string(), currency: z.string() });
const periodView = z.object({ start: z.string(), end: z.string() });
const dayString = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, { message: 'must be a date YYYY-MM-DD (a period start)' });

export const periodQuery = z
  .object({ period: dayString.optional().meta({ description: 'The start (YYYY-MM-DD) of the billing period; default: the current one' }) })
  .strict();

export const usageView = z.object({
  subscription_id: z.string(),
  period: periodView,
  computed_at: z.string().nullable(),
  pending: z.boolean().meta({ description: 'Events arrived after computed_at; the next rollup (seconds away) includes them' }),
  data: z.array(
    z.object({
      id: z.string(),
      product_id: z.string(),
      product_key: z.string(),
      price_key: z.string().nullable(),
      aggregation: z.string(),
      count: z.string().meta({ description: 'Events the rollup covers' }),
      aggregate: z.string(),
      digest: z.string().meta({ description: 'XOR of the first 64 bits of md5(event_id) over the covered events, as a signed integer' }),
      computed_at: z.string(),
    }),
  ),
});

export const allowanceStateView = z.object({
  subscription_id: z.string(),
  customer_id: z.string(),
  period: periodView,
  as_of: z.string(),
  source: z.enum(['rollups', 'live']),
  estimate: z.literal(true),
  currency: z.string(),
  dimensions: z.array(
    z.object({
      product_key: z.string(),
      product_name: z.string(),
      price_key: z.string().nullable(),
      unit: z.string(),
      included: z.string(),
      rolled_over: z.string(),
      used: z.string(),
      remaining: z.string(),
      percent_used: z.string().nullable(),
      overage_quantity: z.string(),
      billable_quantity: z.string(),
      billable_usage: money,
      capped: z.boolean(),
      overage_mode: z.enum(['bill', 'block']),
    }),
  ),
  unpriced: z.array(z.object({ product_key: z.string(), price_key: z.string(), quantity: z.string(), code: z.string(), reason: z.string() })),
  overage_so_far: money,
});
