import { SetMetadata } from '@nestjs/common';
import type { z } from 'zod';

export const API_ROUTE_KEY = 'closebook:api-route';

export interface ApiRouteMeta {
  summary: string;
  description?: string;
  tags?: string[];
  /** Schema of the success body; request body and query schemas are read from the route's Zod pipes. */
  response?: z.ZodType;
  /** Extra error statuses worth documenting beyond 400/401/403/404. */
  errors?: number[];
  produces?: string;
}

/** Describes a route for the OpenAPI document, which is generated from the running app's routes. */
export const ApiRoute = (meta: ApiRouteMeta) => SetMetadata(API_ROUTE_KEY, meta);
