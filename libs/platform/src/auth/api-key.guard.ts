import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Request } from 'express';
import { ForbiddenError, UnauthorizedError } from '../errors/domain-error';
import { ApiKeysService } from '../tenancy/api-keys.service';
import { RequestScopes, type Principal } from '../context/request-context';
import { PUBLIC_KEY, ROLES_KEY } from './roles.decorator';
import type { Role } from './roles';

export type AuthedRequest = Request & { principal?: Principal };

/**
 * Global guard: every route is closed unless it declares `@Public()` or the roles it admits.
 * 401 without a valid key, 403 for a valid key of the wrong role.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeysService,
    private readonly em: EntityManager,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) throw new UnauthorizedError();
    const key = await this.keys.authenticate(this.em, match[1]);
    if (!key) throw new UnauthorizedError('The API key is not valid or has been revoked');
    const principal: Principal = { organizationId: key.organizationId, keyId: key.id, role: key.role, actor: `key:${key.prefix}` };
    req.principal = principal;
    const scope = RequestScopes.current();
    if (scope) scope.principal = principal;

    const allowed = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, targets);
    if (!allowed) throw new ForbiddenError('This route admits no role');
    if (key.role !== 'admin' && !allowed.includes(key.role)) {
      throw new ForbiddenError(`The ${key.role} role may not do this (allowed: admin, ${allowed.filter((r) => r !== 'admin').join(', ')})`);
    }
    return true;
  }
}
