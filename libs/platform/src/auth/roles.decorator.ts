import { SetMetadata } from '@nestjs/common';
import type { Role } from './roles';

export const ROLES_KEY = 'closebook:roles';
export const PUBLIC_KEY = 'closebook:public';

/** The roles allowed on a route. `admin` is always allowed. Every route must say `@Roles` or `@Public`. */
export const Roles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);
export const Public = () => SetMetadata(PUBLIC_KEY, true);
