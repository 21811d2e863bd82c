import { Migration } from '@mikro-orm/migrations';

/**
 * Each event's digest term, stored beside it when it is written: the first 64 bits of
 * md5(event_id) as a signed bigint (libs/billing/metering/src/rollups/digest.ts). md5 and the hex
 * cast cost ~1 µs per event, paid by every read that digests a period (the rollups and the
 * events→rollups check each read the month's events); a generated column pays it once, at ingest,
 * and PostgreSQL keeps it equal to its expression, so a digest summed from it is still a digest of
 * the event ids themselves. Partitions created later inherit it.
 */
export class Migration20261124050000_event_digest extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "usage_events" add column "event_digest" bigint generated always as ((('x' || md5("event_id"))::bit(64))::bigint) stored;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "usage_events" drop column "event_digest";`);
  }

}
