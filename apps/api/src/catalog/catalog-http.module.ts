import { Module } from '@nestjs/common';
import { CatalogModule } from '@closebook/catalog';
import { ProductsController } from './products.controller';
import { PlansController } from './plans.controller';

@Module({ imports: [CatalogModule], controllers: [ProductsController, PlansController] })
export class CatalogHttpModule {}
