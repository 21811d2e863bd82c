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
    return (await this.ratingPlanDocuments(em, [{ id: planVersionId, organizationId }])).get(planVersionId)!.document;
  }

  /**
   * `ratingPlanVersion` of many versions, by id, with whether each is published (only published
   * documents never change, so only they may be remembered by callers): the ones not in memory in
   * one read. A version that does not exist, or belongs to another organization than the one asked
   * with it, is a 404.
   */
  async ratingPlanDocuments(
    em: EntityManager,
    wanted: readonly { id: string; organizationId?: string }[],
  ): Promise<Map<string, { document: RatingPlanVersion; published: boolean }>> {
    const out = new Map<string, { document: RatingPlanVersion; published: boolean }>();
    const missing = new Set<string>();
    for (const w of wanted) {
      if (!isUuid(w.id)) throw new NotFoundError('plan version', w.id);
      const hit = this.published.get(w.id);
      if (hit && (!w.organizationId || hit.organizationId === w.organizationId)) out.set(w.id, { document: hit.document, published: true });
      else if (!hit) missing.add(w.id);
      else throw new NotFoundError('plan version', w.id);
    }
    if (missing.size) {
      // Plain rows, not entities: the documents are read-only here, and managed entities would have
      // their whole JSON compared again at every flush of the caller's unit of work.
      const rows = await em.execute<{ id: string; organization_id: string; status: string; document: RatingPlanVersion }[]>(
        'select id, organization_id, status, document from plan_versions where id = any(?::uuid[])',
        [`{${[...missing].join(',')}}`],
      );
      for (const row of rows) {
        if (row.status !== 'published') {
          out.set(row.id, { document: row.document, published: false });
          continue;
        }
        // Published versions are frozen by a database trigger: remembered, and frozen here too.
        if (this.published.size >= PUBLISHED_DOCUMENTS_KEPT) this.published.delete(this.published.keys().next().value as string);
        const document = deepFreeze(row.document);
        this.published.set(row.id, { organizationId: row.organization_id, document });
        out.set(row.id, { document, published: true });
      }
      const orgOf = new Map(rows.map((r) => [r.id, r.organization_id]));
      for (const w of wanted) {
        if (!missing.has(w.id)) continue;
        if (!orgOf.has(w.id) || (w.organizationId && orgOf.get(w.id) !== w.organizationId)) throw new NotFoundError('plan version', w.id);
      }
    }
    return out;
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
