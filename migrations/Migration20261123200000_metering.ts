import { Migration } from '@mikro-orm/migrations';

export class Migration20261123200000_metering extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "usage_rollups" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "period_start" timestamptz not null, "period_end" timestamptz not null, "product_id" uuid not null, "product_key" text not null, "price_key" text not null, "aggregation" text not null, "event_count" bigint not null, "aggregate" numeric not null, "digest" bigint not null, "computed_at" timestamptz not null, constraint "usage_rollups_pkey" primary key ("id"));`);
    this.addSql(`create index "usage_rollups_organization_id_index" on "usage_rollups" ("organization_id");`);
    this.addSql(`create index "usage_rollups_organization_id_period_start_index" on "usage_rollups" ("organization_id", "period_start");`);
    this.addSql(`alter table "usage_rollups" add constraint "usage_rollups_natural_key_unique" unique ("subscription_id", "period_start", "product_id", "price_key");`);
    this.addSql(`alter table "usage_rollups" add constraint "usage_rollups_aggregation_check" check("aggregation" in ('count', 'sum', 'max', 'unique_count', 'latest'));`);

    // Hand-written: what the entity metadata cannot express (SQL-only tables, partitions, functions,
    // triggers). See docs/metering.md.

    // Dedupe: a unique index on a partitioned table must contain the partition key, so (organization,
    // event_id) lives in this plain table, written in the same statement as the event itself.
    this.addSql(`create table "usage_event_keys" ("organization_id" uuid not null, "event_id" text collate "C" not null, "ts" timestamptz not null, constraint "usage_event_keys_pkey" primary key ("organization_id", "event_id"));`);

    // Raw events: append-only, partitioned by UTC month of the event timestamp; partitions
    // (usage_events_yYYYYmMM) are created on demand by closebook_ensure_usage_partition.
    this.addSql(`create table "usage_events" ("organization_id" uuid not null, "event_id" text not null, "customer_id" uuid not null, "event_name" text not null, "ts" timestamptz not null, "properties" jsonb not null, "received_at" timestamptz not null default now()) partition by range ("ts");`);
    this.addSql(`create index "usage_events_customer_id_ts_index" on "usage_events" ("customer_id", "ts");`);
    this.addSql(`create function closebook_ensure_usage_partition(p_month date) returns text language plpgsql as $$
      declare
        m date := date_trunc('month', p_month)::date;
        part text := format('usage_events_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
      begin
        if to_regclass(part) is not null then return part; end if;
        perform pg_advisory_xact_lock(hashtext('closebook_ensure_usage_partition'));
        if to_regclass(part) is not null then return part; end if;
        execute format('create table %I partition of usage_events for values from (%L) to (%L)',
          part, to_char(m, 'YYYY-MM-DD') || ' 00:00:00+00', to_char((m + interval '1 month')::date, 'YYYY-MM-DD') || ' 00:00:00+00');
        return part;
      exception when duplicate_table then
        return part;
      end $$;`);
    this.addSql(`create trigger usage_events_append_only before update or delete on "usage_events"
      for each row execute function closebook_reject_change();`);
    this.addSql(`create trigger usage_event_keys_append_only before update or delete on "usage_event_keys"
      for each row execute function closebook_reject_change();`);

    // Rollup freshness: ingest marks the (subscription, period) pairs it touched, in the same
    // statement as the events; the rollup job clears a mark only if its version is unchanged.
    this.addSql(`create sequence "usage_rollup_dirty_version_seq";`);
    this.addSql(`create table "usage_rollup_dirty" ("subscription_id" uuid not null, "period_start" timestamptz not null, "organization_id" uuid not null, "version" bigint not null default nextval('usage_rollup_dirty_version_seq'), "marked_at" timestamptz not null default now(), constraint "usage_rollup_dirty_pkey" primary key ("subscription_id", "period_start"));`);
    this.addSql(`create index "usage_rollup_dirty_organization_id_marked_at_index" on "usage_rollup_dirty" ("organization_id", "marked_at");`);
    this.addSql(`create index "usage_rollup_dirty_marked_at_index" on "usage_rollup_dirty" ("marked_at");`);

    // When each (subscription, period) was last rolled up, also for periods without any event.
    this.addSql(`create table "usage_rollup_periods" ("subscription_id" uuid not null, "period_start" timestamptz not null, "organization_id" uuid not null, "period_end" timestamptz not null, "computed_at" timestamptz not null, constraint "usage_rollup_periods_pkey" primary key ("subscription_id", "period_start"));`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "usage_rollup_periods" cascade;`);
    this.addSql(`drop table if exists "usage_rollup_dirty" cascade;`);
    this.addSql(`drop sequence if exists "usage_rollup_dirty_version_seq";`);
    this.addSql(`drop table if exists "usage_events" cascade;`);
    this.addSql(`drop function if exists closebook_ensure_usage_partition(date);`);
    this.addSql(`drop table if exists "usage_event_keys" cascade;`);
    this.addSql(`drop table if exists "usage_rollups" cascade;`);
  }

}
