import 'reflect-metadata';
import { AppConfig, ConfigError, loadConfig } from '@closebook/platform';
import { createApiApp } from './create-app';

async function main() {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      process.exit(78);
    }
    throw e;
  }
  const app = await createApiApp();
  await app.listen(config.port);
}

void main();
