import 'reflect-metadata';
import { CommandFactory } from 'nest-commander';
import { ConfigError, loadConfig, runMigrations } from '@closebook/platform';
import { CliModule } from './cli.module';

async function main() {
  try {
    loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(78);
    }
    throw e;
  }
  // Migrations run without the Nest app: they need no entity, module or queue.
  if (process.argv[2] === 'migrate') {
    const applied = await runMigrations(loadConfig().databaseUrl);
    console.log(applied.length ? `Applied ${applied.length} migration(s): ${applied.join(', ')}` : 'Database is up to date.');
    return;
  }
  await CommandFactory.run(CliModule, {
    logger: ['error', 'warn'],
    errorHandler: (err) => {
      console.error(`error: ${err.message}`);
      process.exit(1);
    },
    serviceErrorHandler: (err) => {
      console.error(`error: ${err.message}`);
      process.exit(1);
    },
  });
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
