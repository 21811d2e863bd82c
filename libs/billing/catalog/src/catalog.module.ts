import { Module } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { Product } from './entities/product.entity';
import { Plan } from './entities/plan.entity';
import { PlanVersion } from './entities/plan-version.entity';
import { PlanVersionProduct } from './entities/plan-version-product.entity';
import { ProductsService } from './products.service';
import { PlansService } from './plans.service';
import { CatalogService } from './catalog.service';

export const CATALOG_ENTITIES = [Product, Plan, PlanVersion, PlanVersionProduct];

const services = [ProductsService, PlansService, CatalogService];

/** Products, plans and immutable plan versions (SPEC §1). */
@Module({
  imports: [MikroOrmModule.forFeature(CATALOG_ENTITIES)],
  providers: services,
  exports: services,
})
export class CatalogModule {}
