import { Injectable } from '@nestjs/common';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { isCurrencyCode } from '@closebook/money';
import {
  afterCursor,
  AuditService,
  ConflictError,
  decodeCursor,
  NotFoundError,
  ValidationError,
  type ProrationStrategy,
} from '@closebook/platform';
import type { Issue, MeteredPlanProduct, PlanProduct, SeatPlanProduct } from '@closebook/rating';
import { Plan, type PlanIntervalName } from './entities/plan.entity';
import { PlanVersion } from './entities/plan-version.entity';
import { PlanVersionProduct } from './entities/plan-version-product.entity';
import { buildPlanVersionDocument, type PlanVersionInput } from './plan-version-document';
import { ProductsService } from './products.service';
import { violatedConstraint } from './db-errors';

export interface CreatePlanInput {
  key: string;
  name: string;
  currency: string;
  interval: PlanIntervalName;
  allowance_rollover_default?: boolean;
  proration_strategy?: ProrationStrategy | null;
}

export interface PlanWithVersions {
  plan: Plan;
  versions: PlanVersion[];
}

export interface PlanVersionWithPlan {
  plan: Plan;
  version: PlanVersion;
  /** Product ids by product key (the document carries keys). */
  productIds: Record<string, string>;
}

/** Rating issues (fields are paths into the request body) to one 400 naming the first field. */
export function issuesToValidationError(issues: Issue[]): ValidationError {
  const first = issues[0];
  return new ValidationError(first.code, first.field ? `${first.field}: ${first.message}` : first.message, first.field || undefined, {
    issues: issues.map((i) => ({ field: i.field, code: i.code, message: i.message })),
  });
}

@Injectable()
export class PlansService {
  constructor(private readonly audit: AuditService, private readonly products: ProductsService) {}

  async create(em: EntityManager, organizationId: string, input: CreatePlanInput): Promise<Plan> {
    if (!isCurrencyCode(input.currency)) {
      throw new ValidationError('unknown_currency', `${JSON.stringify(input.currency)} is not an ISO 4217 currency code`, 'currency');
    }
    if (await em.count(Plan, { organizationId, key: input.key })) {
      throw new ConflictError('plan_key_taken', `a plan with key "${input.key}" already exists`, 'key');
    }
    const plan = em.create(Plan, {
      organizationId,
      key: input.key,
      name: input.name,
      currency: input.currency,
      interval: input.interval,
      allowanceRolloverDefault: input.allowance_rollover_default ?? false,
      prorationStrategy: input.proration_strategy ?? null,
    });
    this.audit.record(em, {
      organizationId,
      action: 'plan.created',
      resourceType: 'plan',
      resourceId: plan.id,
      data: { key: plan.key, currency: plan.currency, interval: plan.interval },
    });
    try {
      await em.flush();
    } catch (e) {
      if (violatedConstraint(e) === 'plans_organization_id_key_unique') {
        throw new ConflictError('plan_key_taken', `a plan with key "${input.key}" already exists`, 'key');
      }
      throw e;
    }
    return plan;
  }

  async get(em: EntityManager, organizationId: string, key: string): Promise<PlanWithVersions> {
    const plan = await this.findPlan(em, organizationId, key);
    const versions = await em.find(PlanVersion, { planId: plan.id }, { orderBy: { version: 'asc' } });
    return { plan, versions };
  }

  /** Newest first; fetch `limit + 1` rows for `toPage`. */
  async list(em: EntityManager, organizationId: string, q: { limit: number; cursor?: string }): Promise<PlanWithVersions[]> {
    const plans = await em.find(Plan, { organizationId, ...afterCursor(decodeCursor(q.cursor)) }, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 });
    const versions = plans.length ? await em.find(PlanVersion, { planId: { $in: plans.map((p) => p.id) } }, { orderBy: { version: 'asc' } }) : [];
    return plans.map((plan) => ({ plan, versions: versions.filter((v) => v.planId === plan.id) }));
  }

  /**
   * Writes version n+1 of a plan (a draft, then published unless `publish` is false) in one
   * transaction: the document, its product rows and the audit entries.
   */
  async createVersion(em: EntityManager, organizationId: string, planKey: string, input: PlanVersionInput, publish: boolean): Promise<PlanVersionWithPlan> {
    return em.transactional(async (tx) => {
      // Locking the plan serializes version numbering per plan.
      const plan = await this.findPlan(tx, organizationId, planKey, true);
      const [{ max }] = await tx.execute<{ max: number | null }[]>('select max(version) as max from plan_versions where plan_id = ?', [plan.id]);
      const number = (max ?? 0) + 1;
      const built = await this.build(tx, organizationId, plan, number, input);
      const version = tx.create(PlanVersion, {
        organizationId,
        planId: plan.id,
        version: number,
        status: 'draft',
        allowanceMultiplier: built.document.allowance_multiplier ?? '1',
        document: built.document,
      });
      this.persistProducts(tx, organizationId, version.id, built.document.products, built.productIds);
      this.audit.record(tx, {
        organizationId,
        action: 'plan_version.created',
        resourceType: 'plan_version',
        resourceId: version.id,
        data: { plan_key: plan.key, version: number, products: built.document.products.map((p) => p.product_key) },
      });
      // Products are inserted while the version is a draft: the freeze trigger refuses them later.
      await tx.flush();
      if (publish) await this.markPublished(tx, plan, version);
      return { plan, version, productIds: idsByKey(built.document.products, built.productIds) };
    });
  }

  /** Replaces a draft's products and terms; a published version is frozen (409). */
  async updateDraft(em: EntityManager, organizationId: string, planKey: string, n: number, input: PlanVersionInput): Promise<PlanVersionWithPlan> {
    return em.transactional(async (tx) => {
      const plan = await this.findPlan(tx, organizationId, planKey);
      const version = await this.findVersion(tx, plan, n, true);
      if (version.status === 'published') throw frozen(plan, version);
      const built = await this.build(tx, organizationId, plan, n, input);
      await tx.nativeDelete(PlanVersionProduct, { planVersionId: version.id });
      version.document = built.document;
      version.allowanceMultiplier = built.document.allowance_multiplier ?? '1';
      this.persistProducts(tx, organizationId, version.id, built.document.products, built.productIds);
      this.audit.record(tx, {
        organizationId,
        action: 'plan_version.updated',
        resourceType: 'plan_version',
        resourceId: version.id,
        data: { plan_key: plan.key, version: n, products: built.document.products.map((p) => p.product_key) },
      });
      await tx.flush();
      return { plan, version, productIds: idsByKey(built.document.products, built.productIds) };
    });
  }

  /** Publishes a draft (freezing it). Publishing a published version changes nothing. */
  async publish(em: EntityManager, organizationId: string, planKey: string, n: number): Promise<PlanVersionWithPlan> {
    return em.transactional(async (tx) => {
      const plan = await this.findPlan(tx, organizationId, planKey);
      const version = await this.findVersion(tx, plan, n, true);
      if (version.status !== 'published') await this.markPublished(tx, plan, version);
      return { plan, version, productIds: await this.productIds(tx, version.id) };
    });
  }

  async getVersion(em: EntityManager, organizationId: string, planKey: string, n: number): Promise<PlanVersionWithPlan> {
    const plan = await this.findPlan(em, organizationId, planKey);
    const version = await this.findVersion(em, plan, n);
    return { plan, version, productIds: await this.productIds(em, version.id) };
  }

  // ------------------------------------------------------------------------------------------

  private async findPlan(em: EntityManager, organizationId: string, key: string, lock = false): Promise<Plan> {
    const plan = await em.findOne(Plan, { organizationId, key }, lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {});
    if (!plan) throw new NotFoundError('plan', key);
    return plan;
  }

  private async findVersion(em: EntityManager, plan: Plan, n: number, lock = false): Promise<PlanVersion> {
    const version = await em.findOne(PlanVersion, { planId: plan.id, version: n }, lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {});
    if (!version) throw new NotFoundError('plan version', `${plan.key} v${n}`);
    return version;
  }

  private async build(em: EntityManager, organizationId: string, plan: Plan, n: number, input: PlanVersionInput) {
    const products = await this.products.byKeys(em, organizationId, input.products.map((p) => p.product_key));
    const built = buildPlanVersionDocument(plan, n, input, products);
    if (built.issues.length) throw issuesToValidationError(built.issues);
    return built;
  }

  private async markPublished(em: EntityManager, plan: Plan, version: PlanVersion): Promise<void> {
    version.status = 'published';
    version.publishedAt = new Date();
    this.audit.record(em, {
      organizationId: version.organizationId,
      action: 'plan_version.published',
      resourceType: 'plan_version',
      resourceId: version.id,
      data: { plan_key: plan.key, version: version.version },
    });
    await em.flush();
  }

  private persistProducts(em: EntityManager, organizationId: string, planVersionId: string, products: PlanProduct[], productIds: string[]): void {
    products.forEach((p, position) => {
      const metered = p.kind === 'metered' ? (p as MeteredPlanProduct) : undefined;
      em.create(PlanVersionProduct, {
        organizationId,
        planVersionId,
        productId: productIds[position],
        productKey: p.product_key,
        kind: p.kind,
        position,
        allowance: metered ? (metered.allowance ?? null) : null,
        allowanceBasis: metered?.allowance_basis ?? null,
        rolloverEnabled: metered?.rollover_enabled ?? null,
        rolloverCap: metered?.rollover_cap ?? null,
        rolloverExpiryPeriods: metered?.rollover_expiry_periods ?? null,
        overage: metered?.overage ?? null,
        includedSeats: p.kind === 'seat' ? ((p as SeatPlanProduct).included_seats ?? 0) : null,
        price: 'price' in p && p.price ? p.price : null,
        keyedPrices: metered?.keyed_prices ?? null,
      });
    });
  }

  private async productIds(em: EntityManager, planVersionId: string): Promise<Record<string, string>> {
    const rows = await em.find(PlanVersionProduct, { planVersionId }, { fields: ['productKey', 'productId'] });
    return Object.fromEntries(rows.map((r) => [r.productKey, r.productId]));
  }
}

function idsByKey(products: PlanProduct[], ids: string[]): Record<string, string> {
  return Object.fromEntries(products.map((p, i) => [p.product_key, ids[i]]));
}

function frozen(plan: Plan, version: PlanVersion): ConflictError {
  return new ConflictError(
    'plan_version_published',
    `${plan.key} v${version.version} is published and can no longer change; create a new version instead`,
    'version',
  );
}
