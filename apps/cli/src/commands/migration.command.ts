import { Command, CommandRunner, Option } from 'nest-commander';
import { MikroORM } from '@mikro-orm/postgresql';

/**
 * Developer command: writes a migration for the difference between the entities and the database
 * (run `npm run migrate` first). Add the new class to migrations/index.ts, then append the SQL the
 * generator cannot express (triggers, partitions, check constraints) by hand.
 */
@Command({ name: 'migration:create', description: 'Generate a migration from the entity metadata' })
export class MigrationCreateCommand extends CommandRunner {
  constructor(private readonly orm: MikroORM) {
    super();
  }

  async run(_: string[], opts: { name?: string }): Promise<void> {
    const result = await this.orm.getMigrator().createMigration('migrations', false, false, opts.name);
    if (!result.fileName) console.log('No changes: the entities match the database.');
    else console.log(`Wrote migrations/${result.fileName}\n${result.diff.up.join('\n')}`);
  }

  @Option({ flags: '--name <name>', description: 'migration name suffix' })
  parseName(v: string) {
    return v;
  }
}
