import { z } from 'zod';

/**
 * Every setting Closebook reads from the environment, validated once at start. Nothing else in the
 * code base reads process.env: a wrong value must stop the process with a message naming the
 * variable, not surface later as a confusing runtime failure.
 */
const urlWithProtocol = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);

const intFromEnv = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be between ${min} and ${max}`);

export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  DATABASE_URL: urlWithProtocol(['postgres:', 'postgresql:']).default(
    'postgresql://postgres@127.0.0.1:5432/closebook',
  ),
  REDIS_URL: urlWithProtocol(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  PORT: intFromEnv(1, 65535).default(3000),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, "_" or "-"')
    .default('closebook'),
  /** Default draft window of an organization's period invoices; organizations may override it. */
  DRAFT_WINDOW_MINUTES: intFromEnv(0, 60 * 24 * 31).default(60),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DB_POOL_MAX: intFromEnv(1, 200).default(10),
  /** Worker: whether this process runs the schedulers (all processes may; advisory locks make it safe). */
  WORKER_CONCURRENCY: intFromEnv(1, 64).default(4),
  /** Where export files (auditor workbooks) are written, named by export id; API and workers must share it. */
  EXPORTS_DIR: z.string().min(1).default('./var/exports'),
});

export type AppConfigValues = z.infer<typeof configSchema>;

export class ConfigError extends Error {}

/** Parses the environment; throws ConfigError listing every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  const picked: Record<string, string | undefined> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    picked[key] = value === '' ? undefined : value;
  }
  const result = configSchema.safeParse(picked);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return new AppConfig(result.data);
}

/** Injected wherever a setting is needed. */
export class AppConfig {
  constructor(readonly values: AppConfigValues) {
    Object.freeze(this.values);
  }
  get databaseUrl() {
    return this.values.DATABASE_URL;
  }
  get redisUrl() {
    return this.values.REDIS_URL;
  }
  get port() {
    return this.values.PORT;
  }
  get queuePrefix() {
    return this.values.QUEUE_PREFIX;
  }
  get draftWindowMinutes() {
    return this.values.DRAFT_WINDOW_MINUTES;
  }
  get logLevel() {
    return this.values.LOG_LEVEL;
  }
  get isTest() {
    return this.values.NODE_ENV === 'test';
  }
  get dbPoolMax() {
    return this.values.DB_POOL_MAX;
  }
  get workerConcurrency() {
    return this.values.WORKER_CONCURRENCY;
  }
}
