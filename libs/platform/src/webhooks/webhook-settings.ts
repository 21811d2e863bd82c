import { AppConfig } from '../config/app-config';

/**
 * How webhooks are dispatched and delivered. Production values below; under NODE_ENV=test the
 * backoff and the stale-delivery grace are short, so end-to-end suites see retries in milliseconds.
 * Values are read when a job is enqueued (attempts, backoff) or run (the rest).
 */
export class WebhookSettings {
  /** Attempts per delivery, the first included; after the last one the delivery is `failed`. */
  attempts = 10;
  /** Exponential backoff: attempt n+1 waits backoffDelayMs × 2^(n-1) after attempt n fails. */
  backoffDelayMs = 60_000;
  /** Per attempt, connection to end of the (truncated) answer. */
  timeoutMs = 10_000;
  /** The job scheduler's dispatch interval. */
  dispatchEveryMs = 2_000;
  /** Outbox messages claimed per dispatch transaction, and transactions per dispatch job. */
  dispatchBatchSize = 200;
  maxBatchesPerRun = 10;
  /** A pending delivery whose attempt is this overdue gets its job enqueued again (lost jobs). */
  staleAfterMs = 10 * 60_000;
  /** Bytes of the receiver's answer kept in the delivery log. */
  responseBodyLimit = 2_048;

  /** How long a worker holds a delivery while it posts it. */
  get leaseMs(): number {
    return this.timeoutMs + 30_000;
  }

  /** The delay BullMQ's exponential backoff applies after the given number of failed attempts. */
  backoffAfter(failedAttempts: number): number {
    return Math.round(2 ** (failedAttempts - 1) * this.backoffDelayMs);
  }
}

export function webhookSettingsFor(config: AppConfig): WebhookSettings {
  const settings = new WebhookSettings();
  if (config.isTest) {
    settings.backoffDelayMs = 100;
    settings.staleAfterMs = 3_000;
    settings.timeoutMs = 3_000;
  }
  return settings;
}
