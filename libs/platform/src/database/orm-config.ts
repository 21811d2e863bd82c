import type { Options } from '@mikro-orm/core';
import { defineConfig, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { MIGRATIONS } from '@closebook/migrations';

export interface OrmConfigInput {
  databaseUrl: string;
  poolMax?: number;
  debug?: boolean;
}

/**
 * Tables that exist only in SQL (partitioned, written in bulk) and have no entity: the drift check
 * must not propose to drop them.
 */
export const SQL_ONLY_TABLES: (string | RegExp)[] = [/^usage_events(_.*)?$/, /^bench_/, /^usage_event_keys$/, /^usage_rollup_(dirty|periods)$/];

/**
 * The one MikroORM configuration. Migrations are a fixed list compiled with the code (no glob
 * discovery), and run only by `npm run migrate`, never at module start.
 */
export function buildOrmConfig(input: OrmConfigInput, entities?: Options['entities']): Options<PostgreSqlDriver> {
  return defineConfig({
    clientUrl: input.databaseUrl,
    entities: entities ?? [],
    discovery: { warnWhenNoEntities: false },
    extensions: [Migrator],
    allowGlobalContext: false,
    forceUtcTimezone: true,
    pool: { min: 0, max: input.poolMax ?? 10 },
    debug: input.debug ?? false,
    migrations: {
      tableName: 'mikro_orm_migrations',
      migrationsList: MIGRATIONS,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
      emit: 'ts',
      path: 'migrations',
      pathTs: 'migrations',
    },
    schemaGenerator: { skipTables: SQL_ONLY_TABLES },
  });
}
