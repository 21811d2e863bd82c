import { Controller, Get, Param, Post } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, pageSchema, Roles, toPage, ZBody, ZQuery, type Principal } from '@closebook/platform';
import { ProductsService } from '@closebook/catalog';
import { createProductBody, listProductsQuery, presentProduct, productView } from './catalog.views';

const listQuery = listProductsQuery;

@Controller('products')
export class ProductsController {
  constructor(private readonly products: ProductsService, private readonly em: EntityManager) {}

  @Post()
  @Roles('finance')
  @ApiRoute({
    summary: 'Create a product (a metered product names its meter)',
    tags: ['catalog'],
    response: productView,
    errors: [409],
  })
  async create(@Caller() caller: Principal, @ZBody(createProductBody) body: z.infer<typeof createProductBody>) {
    return presentProduct(await this.em.transactional((tx) => this.products.create(tx, caller.organizationId, body)));
  }

  @Get()
  @Roles('finance', 'support', 'auditor')
  @ApiRoute({ summary: 'List products, newest first', tags: ['catalog'], response: pageSchema(productView) })
  async list(@Caller() caller: Principal, @ZQuery(listQuery) q: z.infer<typeof listQuery>) {
    const rows = await this.products.list(this.em, caller.organizationId, q);
    return toPage(rows, q.limit, presentProduct);
  }

  @Get(':key')
  @Roles('finance', 'support', 'auditor')
  @ApiRoute({ summary: 'A product by its key', tags: ['catalog'], response: productView })
  async get(@Caller() caller: Principal, @Param('key') key: string) {
    return presentProduct(await this.products.get(this.em, caller.organizationId, key));
  }
}
