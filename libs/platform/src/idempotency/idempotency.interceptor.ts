import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { Response } from 'express';
import { from, lastValueFrom, Observable } from 'rxjs';
import { ConflictError, ReplayedError, ValidationError } from '../errors/domain-error';
import { toErrorResponse } from '../errors/error-response';
import type { AuthedRequest } from '../auth/api-key.guard';
import { IdempotencyService, requestHash } from './idempotency.service';

const WAIT_FOR_TWIN_MS = 10_000;
const POLL_MS = 50;

/**
 * Honors `Idempotency-Key` on every POST: the first request runs and its status and body are stored;
 * a retry with the same key and body gets the stored answer (header `Idempotent-Replayed: true`);
 * the same key with a different body is a 409. A concurrent twin waits for the first to finish.
 * 2xx and 4xx outcomes are stored (a 4xx changed nothing and will fail the same way again);
 * a 5xx releases the key so the client can retry.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(private readonly store: IdempotencyService) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (ctx.getType() !== 'http') return next.handle();
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const key = req.header('idempotency-key');
    if (req.method !== 'POST' || key === undefined || !req.principal) return next.handle();
    return from(this.run(ctx, next, req, key));
  }

  private async run(ctx: ExecutionContext, next: CallHandler, req: AuthedRequest, key: string): Promise<unknown> {
    if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
      throw new ValidationError('invalid_idempotency_key', 'Idempotency-Key must be 1-255 visible ASCII characters', 'Idempotency-Key');
    }
    const res = ctx.switchToHttp().getResponse<Response>();
    const org = req.principal!.organizationId;
    const hash = requestHash(req.method, req.originalUrl, req.body);
    const deadline = Date.now() + WAIT_FOR_TWIN_MS;
    for (;;) {
      const claim = await this.store.claim(org, key, hash, req.method, req.originalUrl);
      if (claim.kind === 'mismatch') {
        throw new ConflictError('idempotency_key_reused', 'This Idempotency-Key was used with a different request', 'Idempotency-Key');
      }
      if (claim.kind === 'replay') {
        res.setHeader('Idempotent-Replayed', 'true');
        // Success statuses are the route's own; an error answer goes back through the filter as stored.
        if (claim.status >= 400) throw new ReplayedError(claim.status, claim.body);
        return claim.body;
      }
      if (claim.kind === 'claimed') break;
      if (Date.now() > deadline) {
        throw new ConflictError('idempotency_key_in_progress', 'A request with this Idempotency-Key is still being processed; retry later', 'Idempotency-Key');
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    try {
      const body = await lastValueFrom(next.handle(), { defaultValue: undefined });
      await this.store.complete(org, key, res.statusCode, body ?? null);
      return body;
    } catch (err) {
      const { status, body } = toErrorResponse(err);
      if (status < 500) await this.store.complete(org, key, status, body);
      else await this.store.release(org, key);
      throw err;
    }
  }
}

