import type { INestApplication } from '@nestjs/common';
import { MikroORM } from '@mikro-orm/postgresql';
import request from 'supertest';
import { OrganizationsService } from '@closebook/platform';
import { createApiApp } from '../../apps/api/src/create-app';

export interface TestApi {
  app: INestApplication;
  http: ReturnType<typeof request>;
  orm: MikroORM;
  /** A new organization with its admin key; each test makes its own tenants, so tests never collide. */
  newOrg(name?: string): Promise<{ orgId: string; adminKey: string }>;
  close(): Promise<void>;
}

export async function startApi(): Promise<TestApi> {
  const app = await createApiApp({ logger: false });
  await app.listen(0, '127.0.0.1');
  const orm = app.get<MikroORM>(MikroORM);
  const orgs = app.get(OrganizationsService);
  const http = request(app.getHttpServer());
  return {
    app,
    http,
    orm,
    async newOrg(name = 'Test Org') {
      const { organization, adminKey } = await orgs.createWithAdminKey(orm.em.fork(), name);
      return { orgId: organization.id, adminKey: adminKey.apiKey };
    },
    async close() {
      await app.close();
    },
  };
}

export const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });
