import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import { UnauthorizedError } from '../errors/domain-error';
import type { AuthedRequest } from './api-key.guard';
import type { Principal } from '../context/request-context';

/** The authenticated caller; every tenant query is scoped by `principal.organizationId`. */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<AuthedRequest>();
  if (!req.principal) throw new UnauthorizedError();
  return req.principal;
});
