/**
 * @closebook/catalog — products (with meters), plans and immutable plan versions (SPEC §1).
 * A plan version's `document` is the rating core's `RatingPlanVersion`; read it with
 * `CatalogService.ratingPlanVersion(em, planVersionId)`. API and rules: docs/catalog.md.
 */
export * from './entities/product.entity';
export * from './entities/plan.entity';
export * from './entities/plan-version.entity';
export * from './entities/plan-version-product.entity';
export { buildPlanVersionDocument } from './plan-version-document';
export type { PlanVersionInput, VersionProductInput, VersionPriceInput, PlanFacts, ProductFacts, BuiltVersion } from './plan-version-document';
export { ProductsService, checkProductShape } from './products.service';
export type { CreateProductInput, MeterInput } from './products.service';
export { PlansService, issuesToValidationError } from './plans.service';
export type { CreatePlanInput, PlanWithVersions, PlanVersionWithPlan } from './plans.service';
export { CatalogService } from './catalog.service';
export type { PinnedVersion } from './catalog.service';
export { CatalogModule, CATALOG_ENTITIES } from './catalog.module';
