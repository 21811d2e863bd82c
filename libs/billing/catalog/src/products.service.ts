import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterCursor, AuditService, ConflictError, decodeCursor, NotFoundError, ValidationError } from '@closebook/platform';
import { Product, type MeterAggregation, type MeterFilter, type ProductKind } from './entities/product.entity';
import { violatedConstraint } from './db-errors';

export interface MeterInput {
  event_name: string;
  aggregation: MeterAggregation;
  property?: string;
  filter?: MeterFilter;
}

export interface CreateProductInput {
  key: string;
  name: string;
  kind: ProductKind;
  unit?: string;
  meter?: MeterInput;
  price_key_label?: string;
}

/** Aggregations that read an event property (count counts events and reads none). */
const NEEDS_PROPERTY: readonly MeterAggregation[] = ['sum', 'max', 'unique_count', 'latest'];

@Injectable()
export class ProductsService {
  constructor(private readonly audit: AuditService) {}

  /** Creates a product; a metered product must name its meter and unit, other kinds must not. */
  async create(em: EntityManager, organizationId: string, input: CreateProductInput): Promise<Product> {
    checkProductShape(input);
    if (await em.count(Product, { organizationId, key: input.key })) {
      throw new ConflictError('product_key_taken', `a product with key "${input.key}" already exists`, 'key');
    }
    const product = em.create(Product, {
      organizationId,
      key: input.key,
      name: input.name,
      kind: input.kind,
      unit: input.unit ?? null,
      meterEventName: input.meter?.event_name ?? null,
      meterAggregation: input.meter?.aggregation ?? null,
      meterProperty: input.meter?.property ?? null,
      meterFilter: input.meter?.filter && Object.keys(input.meter.filter).length ? input.meter.filter : null,
      priceKeyLabel: input.price_key_label ?? null,
    });
    this.audit.record(em, {
      organizationId,
      action: 'product.created',
      resourceType: 'product',
      resourceId: product.id,
      data: { key: product.key, kind: product.kind },
    });
    try {
      await em.flush();
    } catch (e) {
      if (violatedConstraint(e) === 'products_organization_id_key_unique') {
        throw new ConflictError('product_key_taken', `a product with key "${input.key}" already exists`, 'key');
      }
      throw e;
    }
    return product;
  }

  async get(em: EntityManager, organizationId: string, key: string): Promise<Product> {
    const product = await em.findOne(Product, { organizationId, key });
    if (!product) throw new NotFoundError('product', key);
    return product;
  }

  /** Newest first; fetch `limit + 1` rows for `toPage`. */
  async list(em: EntityManager, organizationId: string, q: { limit: number; cursor?: string; kind?: ProductKind }): Promise<Product[]> {
    return em.find(
      Product,
      { organizationId, ...(q.kind ? { kind: q.kind } : {}), ...afterCursor(decodeCursor(q.cursor)) },
      { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 },
    );
  }

  /** Products of the organization by key (for building plan versions). */
  async byKeys(em: EntityManager, organizationId: string, keys: string[]): Promise<Map<string, Product>> {
    const rows = keys.length ? await em.find(Product, { organizationId, key: { $in: [...new Set(keys)] } }) : [];
    return new Map(rows.map((p) => [p.key, p]));
  }
}

/** The rules of SPEC §1 on a product's meter, unit and price key, each naming its field. */
export function checkProductShape(input: CreateProductInput): void {
  if (input.kind === 'metered') {
    if (!input.meter) throw new ValidationError('meter_required', 'a metered product must name its meter (event_name, aggregation…)', 'meter');
    if (!input.unit) throw new ValidationError('missing_field', 'a metered product needs a display unit (calls, GB…)', 'unit');
    const { aggregation, property } = input.meter;
    if (NEEDS_PROPERTY.includes(aggregation) && !property) {
      throw new ValidationError('meter_property_required', `a ${aggregation} meter aggregates an event property: name it`, 'meter.property');
    }
    if (aggregation === 'count' && property !== undefined) {
      throw new ValidationError('meter_property_not_allowed', 'a count meter counts events and reads no property', 'meter.property');
    }
    if (input.price_key_label !== undefined && input.meter.filter && input.price_key_label in input.meter.filter) {
      throw new ValidationError(
        'price_key_label_filtered',
        `the meter filter fixes "${input.price_key_label}", so it cannot also key prices`,
        'price_key_label',
      );
    }
    return;
  }
  if (input.meter !== undefined) throw new ValidationError('meter_not_allowed', `a ${input.kind} product has no meter; only metered products do`, 'meter');
  if (input.price_key_label !== undefined) {
    throw new ValidationError('price_key_label_not_allowed', `a ${input.kind} product has no price key; only metered products do`, 'price_key_label');
  }
}
