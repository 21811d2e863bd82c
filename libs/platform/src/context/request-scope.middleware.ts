import { Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { RequestScopes } from './request-context';

/** Opens the ambient scope for a request: its id (echoed as X-Request-Id) and its idempotency key. */
@Injectable()
export class RequestScopeMiddleware implements NestMiddleware {
  use(req: Request, res: Response, next: NextFunction) {
    const incoming = req.header('x-request-id');
    const requestId = incoming && /^[\w.:-]{1,100}$/.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', requestId);
    const key = req.header('idempotency-key');
    RequestScopes.run({ requestId, idempotencyKey: key || undefined }, () => next());
  }
}
