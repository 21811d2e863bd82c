import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { deepFreeze, isUuid, NotFoundError, UnprocessableError } from '@closebook/platform';
import type { RatingPlanVersion } from '@closebook/rating';
import { Plan } from './entities/plan.entity';
import { PlanVersion } from './entities/plan-version.entity';
import { PlanVersionProduct } from './entities/plan-version-product.entity';
import { Product } from './entities/product.entity';

/** Published plan documents kept in memory per process (a few kB each). */
const PUBLISHED_DOCUMENTS_KEPT = 2000;

export interface PinnedVersion {
  plan: Plan;
  version: PlanVersion;
}

/**
 * The catalog as other modules read it (subscriptions, metering, invoicing): pinned plan versions
 * as rating documents, their product rows, and the meters of metered products.
 */
@Injectable()
export class CatalogService {
  /** Published plan documents by version id (oldest entry forgotten first past the bound). */
  private readonly published = new Map<string, { organizationId: string; document: RatingPlanVersion }>();

  /**
   * The `RatingPlanVersion` document of a plan version: what rating and allowance state read.
   * With `organizationId`, a version of another organization is a 404.
   */
  async ratingPlanVersion(em: EntityManager, planVersionId: string, organizationId?: string): Promise<RatingPlanVersion> {
    const hit = this.published.get(planVersionId);
    if (hit && (!organizationId || hit.organizationId === organizationId)) return hit.document;
    // A plain read, not an entity: the document is read-only here, and a managed entity would have its
    // whole JSON compared again at every flush of the caller's unit of work (rating flushes several times).
    const [row] = isUuid(planVersionId)
      ? await em.execute<{ organization_id: string; status: string; document: RatingPlanVersion }[]>(
          'select organization_id, status, document from plan_versions where id = ?',
          [planVersionId],
        )
      : [];
    if (!row || (organizationId && row.organization_id !== organizationId)) throw new NotFoundError('plan version', planVersionId);
    if (row.status !== 'published') return row.document;
    // Published versions are frozen by a database trigger: remembered, and frozen here too.
    if (this.published.size >= PUBLISHED_DOCUMENTS_KEPT) this.published.delete(this.published.keys().next().value as string);
    const document = deepFreeze(row.document);
    this.published.set(planVersionId, { organizationId: row.organization_id, document });
    return document;
  }

  async planVersionById(em: EntityManager, planVersionId: string, organizationId?: string): Promise<PlanVersion> {
    const version = await em.findOne(PlanVersion, { id: planVersionId, ...(organizationId ? { organizationId } : {}) });
    if (!version) throw new NotFoundError('plan version', planVersionId);
    return version;
  }

  /** Plan versions by id with their plans (one query each), e.g. for presenting subscriptions. */
  async pinnedVersions(em: EntityManager, organizationId: string, planVersionIds: string[]): Promise<Map<string, PinnedVersion>> {
    const ids = [...new Set(planVersionIds)];
    if (!ids.length) return new Map();
    const versions = await em.find(PlanVersion, { organizationId, id: { $in: ids } });
    const plans = await em.find(Plan, { organizationId, id: { $in: [...new Set(versions.map((v) => v.planId))] } });
    const byId = new Map(plans.map((p) => [p.id, p]));
    return new Map(versions.map((v) => [v.id, { plan: byId.get(v.planId)!, version: v }]));
  }

  /**
   * A published version of a plan to subscribe to: version `n`, or the latest published one.
   * `field` names the request field blamed for a 404/422.
   */
  async publishedVersion(em: EntityManager, organizationId: string, planKey: string, n?: number, field = 'plan_key'): Promise<PinnedVersion> {
    const plan = await em.findOne(Plan, { organizationId, key: planKey });
    if (!plan) throw new NotFoundError('plan', planKey, field);
    if (n !== undefined) {
      const version = await em.findOne(PlanVersion, { planId: plan.id, version: n });
      if (!version) throw new NotFoundError('plan version', `${planKey} v${n}`, 'plan_version');
      if (version.status !== 'published') {
        throw new UnprocessableError('plan_version_not_published', `${planKey} v${n} is a draft; publish it before subscribing to it`, 'plan_version');
      }
      return { plan, version };
    }
    const [version] = await em.find(PlanVersion, { planId: plan.id, status: 'published' }, { orderBy: { version: 'desc' }, limit: 1 });
    if (!version) throw new UnprocessableError('plan_not_published', `plan ${planKey} has no published version`, field);
    return { plan, version };
  }

  /** The product rows of a plan version, in document order. */
  async versionProducts(em: EntityManager, planVersionId: string): Promise<PlanVersionProduct[]> {
    return em.find(PlanVersionProduct, { planVersionId }, { orderBy: { position: 'asc' } });
  }

  /** The metered products of an organization with their meters (for metering). */
  async meteredProducts(em: EntityManager, organizationId: string): Promise<Product[]> {
    return em.find(Product, { organizationId, kind: 'metered' }, { orderBy: { key: 'asc' } });
  }
}
