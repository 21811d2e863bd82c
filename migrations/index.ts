import type { Constructor } from '@mikro-orm/core';
import type { Migration } from '@mikro-orm/migrations';
import { Migration20261123182311_platform } from './Migration20261123182311_platform';

/**
 * Every migration, in order. A fixed list (rather than a folder glob) so the same code runs from
 * TypeScript in tests and from compiled JavaScript in production.
 */
export const MIGRATIONS: { name: string; class: Constructor<Migration> }[] = [{ name: 'Migration20261123182311_platform', class: Migration20261123182311_platform }];
