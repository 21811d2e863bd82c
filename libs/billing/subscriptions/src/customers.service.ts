import { Injectable } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { formatDecimal, isCurrencyCode } from '@closebook/money';
import { afterCursor, AuditService, ConflictError, decodeCursor, NotFoundError, ValidationError } from '@closebook/platform';
import { parseTaxRate } from '@closebook/rating';
import { Customer } from './entities/customer.entity';

export interface CreateCustomerInput {
  external_id: string;
  name: string;
  currency: string;
  tax_rate?: string;
  email?: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The violated constraint of a failed statement, if any. */
function violatedConstraint(err: unknown): string | undefined {
  const e = err as { constraint?: unknown } | null;
  return e && typeof e === 'object' && typeof e.constraint === 'string' ? e.constraint : undefined;
}

@Injectable()
export class CustomersService {
  constructor(private readonly audit: AuditService) {}

  async create(em: EntityManager, organizationId: string, input: CreateCustomerInput): Promise<Customer> {
    if (!isCurrencyCode(input.currency)) {
      throw new ValidationError('unknown_currency', `${JSON.stringify(input.currency)} is not an ISO 4217 currency code`, 'currency');
    }
    // The rating core's rule (a fraction 0..1, at most 12 decimals); it names the field.
    const taxRate = formatDecimal(parseTaxRate(input.tax_rate ?? '0', 'tax_rate'));
    if (await em.count(Customer, { organizationId, externalId: input.external_id })) {
      throw new ConflictError('customer_external_id_taken', `a customer with external_id "${input.external_id}" already exists`, 'external_id');
    }
    const customer = em.create(Customer, {
      organizationId,
      externalId: input.external_id,
      name: input.name,
      email: input.email ?? null,
      currency: input.currency,
      taxRate,
    });
    this.audit.record(em, {
      organizationId,
      action: 'customer.created',
      resourceType: 'customer',
      resourceId: customer.id,
      data: { external_id: customer.externalId, currency: customer.currency, tax_rate: taxRate },
    });
    try {
      await em.flush();
    } catch (e) {
      if (violatedConstraint(e) === 'customers_organization_id_external_id_unique') {
        throw new ConflictError('customer_external_id_taken', `a customer with external_id "${input.external_id}" already exists`, 'external_id');
      }
      throw e;
    }
    return customer;
  }

  /**
   * A customer by its id or, failing that, its external id (the id wins when a value is both).
   * Another organization's customer is a 404.
   */
  async get(em: EntityManager, organizationId: string, ref: string, opts: { lock?: boolean } = {}): Promise<Customer> {
    const lock = opts.lock ? { lockMode: LockMode.PESSIMISTIC_WRITE as const } : {};
    const byId = UUID_RE.test(ref) ? await em.findOne(Customer, { organizationId, id: ref }, lock) : null;
    const customer = byId ?? (await em.findOne(Customer, { organizationId, externalId: ref }, lock));
    if (!customer) throw new NotFoundError('customer', ref);
    return customer;
  }

  /** Newest first; fetch `limit + 1` rows for `toPage`. */
  async list(em: EntityManager, organizationId: string, q: { limit: number; cursor?: string }): Promise<Customer[]> {
    return em.find(Customer, { organizationId, ...afterCursor(decodeCursor(q.cursor)) }, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 });
  }
}
