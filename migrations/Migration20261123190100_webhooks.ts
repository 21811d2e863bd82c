import { Migration } from '@mikro-orm/migrations';

export class Migration20261123190100_webhooks extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "webhook_endpoints" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "url" text not null, "description" text null, "event_types" text[] not null, "secret" text not null, "previous_secret" text null, "previous_secret_expires_at" timestamptz null, "enabled" boolean not null default true, "updated_at" timestamptz not null default now(), constraint "webhook_endpoints_pkey" primary key ("id"), constraint webhook_endpoints_event_types_check check (cardinality(event_types) > 0));`);
    this.addSql(`create index "webhook_endpoints_organization_id_index" on "webhook_endpoints" ("organization_id");`);
    this.addSql(`create index "webhook_endpoints_organization_id_created_at_index" on "webhook_endpoints" ("organization_id", "created_at");`);

    this.addSql(`create table "webhook_deliveries" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "message_id" uuid not null, "endpoint_id" uuid not null, "event_type" text not null, "status" text check ("status" in ('pending', 'succeeded', 'failed')) not null default 'pending', "attempt_count" int not null default 0, "manual_retries" int not null default 0, "next_attempt_at" timestamptz null, "last_attempt_at" timestamptz null, "last_status_code" int null, "last_error" text null, "completed_at" timestamptz null, "locked_until" timestamptz null, constraint "webhook_deliveries_pkey" primary key ("id"));`);
    this.addSql(`create index "webhook_deliveries_organization_id_index" on "webhook_deliveries" ("organization_id");`);
    this.addSql(`create index "webhook_deliveries_status_next_attempt_at_index" on "webhook_deliveries" ("status", "next_attempt_at");`);
    this.addSql(`create index "webhook_deliveries_endpoint_id_created_at_index" on "webhook_deliveries" ("endpoint_id", "created_at");`);
    this.addSql(`create index "webhook_deliveries_organization_id_created_at_index" on "webhook_deliveries" ("organization_id", "created_at");`);
    this.addSql(`alter table "webhook_deliveries" add constraint "webhook_deliveries_message_id_endpoint_id_unique" unique ("message_id", "endpoint_id");`);

    this.addSql(`create table "webhook_delivery_attempts" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "delivery_id" uuid not null, "attempt_number" int not null, "succeeded" boolean not null, "status_code" int null, "duration_ms" int not null, "error" text null, "response_body" text null, "response_body_truncated" boolean not null default false, constraint "webhook_delivery_attempts_pkey" primary key ("id"));`);
    this.addSql(`create index "webhook_delivery_attempts_organization_id_index" on "webhook_delivery_attempts" ("organization_id");`);
    this.addSql(`alter table "webhook_delivery_attempts" add constraint "webhook_delivery_attempts_delivery_id_attempt_number_unique" unique ("delivery_id", "attempt_number");`);

    this.addSql(`alter table "webhook_deliveries" add constraint "webhook_deliveries_message_id_foreign" foreign key ("message_id") references "outbox_messages" ("id") on update cascade;`);
    this.addSql(`alter table "webhook_deliveries" add constraint "webhook_deliveries_endpoint_id_foreign" foreign key ("endpoint_id") references "webhook_endpoints" ("id") on update cascade;`);

    this.addSql(`alter table "webhook_delivery_attempts" add constraint "webhook_delivery_attempts_delivery_id_foreign" foreign key ("delivery_id") references "webhook_deliveries" ("id") on update cascade;`);

    // Hand-written: what the entity metadata cannot express.
    // The delivery log is append-only, like the audit log (closebook_reject_change comes from the platform migration).
    this.addSql(`create trigger webhook_delivery_attempts_append_only before update or delete on "webhook_delivery_attempts"
      for each row execute function closebook_reject_change();`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "webhook_deliveries" drop constraint "webhook_deliveries_endpoint_id_foreign";`);

    this.addSql(`alter table "webhook_delivery_attempts" drop constraint "webhook_delivery_attempts_delivery_id_foreign";`);

    this.addSql(`drop table if exists "webhook_endpoints" cascade;`);

    this.addSql(`drop table if exists "webhook_deliveries" cascade;`);

    this.addSql(`drop table if exists "webhook_delivery_attempts" cascade;`);
  }

}
