import type { INestApplication } from '@nestjs/common';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA, HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, Reflector } from '@nestjs/core';
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ZodPipe } from '../validation/zod.pipe';
import { API_ROUTE_KEY, type ApiRouteMeta } from './api-route.decorator';
import { PUBLIC_KEY, ROLES_KEY } from '../auth/roles.decorator';

export interface DiscoveredRoute {
  method: string;
  path: string;
  controller: string;
  handler: string;
  meta?: ApiRouteMeta;
  roles?: string[];
  isPublic: boolean;
  body?: z.ZodType;
  query?: z.ZodType;
  status: number;
}

const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), field: z.string().nullable() }),
});

function joinPath(...parts: string[]): string {
  const joined = parts.map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/');
  return `/${joined}`;
}

/** Every HTTP route of the running app, with the schemas its pipes validate against. */
export function discoverRoutes(app: INestApplication, prefix: string): DiscoveredRoute[] {
  const discovery = app.get(DiscoveryService);
  const reflector = app.get(Reflector);
  const routes: DiscoveredRoute[] = [];
  for (const wrapper of discovery.getControllers()) {
    const ctor = wrapper.metatype as (new (...args: unknown[]) => unknown) | undefined;
    if (!ctor) continue;
    const base: string = Reflect.getMetadata(PATH_METADATA, ctor) ?? '';
    const proto = ctor.prototype;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const fn = proto[name];
      if (name === 'constructor' || typeof fn !== 'function') continue;
      const path = Reflect.getMetadata(PATH_METADATA, fn);
      const method = Reflect.getMetadata(METHOD_METADATA, fn);
      if (path === undefined || method === undefined) continue;
      const args: Record<string, { pipes?: unknown[] }> = Reflect.getMetadata(ROUTE_ARGS_METADATA, ctor, name) ?? {};
      let body: z.ZodType | undefined;
      let query: z.ZodType | undefined;
      for (const arg of Object.values(args)) {
        for (const pipe of arg.pipes ?? []) {
          if (pipe instanceof ZodPipe) {
            if (pipe.where === 'body') body = pipe.schema;
            if (pipe.where === 'query') query = pipe.schema;
          }
        }
      }
      const verb = RequestMethod[method as RequestMethod];
      routes.push({
        method: verb,
        path: joinPath(prefix, base, Array.isArray(path) ? path[0] : path),
        controller: ctor.name,
        handler: name,
        meta: reflector.getAllAndOverride<ApiRouteMeta>(API_ROUTE_KEY, [fn, ctor]),
        roles: reflector.getAllAndOverride<string[]>(ROLES_KEY, [fn, ctor]),
        isPublic: !!reflector.getAllAndOverride<boolean>(PUBLIC_KEY, [fn, ctor]),
        body,
        query,
        status: Reflect.getMetadata(HTTP_CODE_METADATA, fn) ?? (verb === 'POST' ? 201 : 200),
      });
    }
  }
  return routes.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
}

/** The OpenAPI 3.1 document, generated from the routes themselves so it cannot drift from the code. */
export function buildOpenApiDocument(app: INestApplication, prefix: string, version: string) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'apiKey', { type: 'http', scheme: 'bearer', description: 'An API key: `Authorization: Bearer cb_…`' });
  for (const r of discoverRoutes(app, prefix)) {
    const oaPath = r.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
    const paramNames = [...r.path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]);
    const roles = r.isPublic ? 'public' : `roles: admin${(r.roles ?? []).filter((x) => x !== 'admin').map((x) => `, ${x}`).join('')}`;
    const responses: Record<string, unknown> = {
      [r.status]: {
        description: 'Success',
        ...(r.meta?.response ? { content: { [r.meta.produces ?? 'application/json']: { schema: r.meta.response } } } : {}),
      },
    };
    for (const status of [400, ...(r.isPublic ? [] : [401, 403]), 404, ...(r.meta?.errors ?? [])]) {
      responses[status] = { description: 'Error', content: { 'application/json': { schema: errorSchema } } };
    }
    registry.registerPath({
      method: r.method.toLowerCase() as 'get',
      path: oaPath,
      summary: r.meta?.summary ?? `${r.controller}.${r.handler}`,
      description: [r.meta?.description, `Access — ${roles}.`, r.method === 'POST' ? 'Honors `Idempotency-Key`.' : undefined].filter(Boolean).join('\n\n'),
      tags: r.meta?.tags,
      security: r.isPublic ? [] : [{ apiKey: [] }],
      request: {
        ...(paramNames.length ? { params: z.object(Object.fromEntries(paramNames.map((p) => [p, z.string()]))) } : {}),
        ...(r.query instanceof z.ZodObject ? { query: r.query } : {}),
        ...(r.body ? { body: { content: { 'application/json': { schema: r.body } } } } : {}),
      },
      responses: responses as never,
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'Closebook API', version, description: 'Hybrid billing, traceability, ledger and month-end close. Money is a decimal string with its currency.' },
    servers: [{ url: '/' }],
  });
}
