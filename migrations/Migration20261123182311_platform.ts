import { Migration } from '@mikro-orm/migrations';

export class Migration20261123182311_platform extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "api_keys" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "role" text not null, "name" text null, "prefix" text not null, "key_hash" text not null, "revoked_at" timestamptz null, constraint "api_keys_pkey" primary key ("id"));`);
    this.addSql(`create index "api_keys_organization_id_index" on "api_keys" ("organization_id");`);
    this.addSql(`alter table "api_keys" add constraint "api_keys_key_hash_unique" unique ("key_hash");`);

    this.addSql(`create table "audit_log" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "actor_key_id" uuid null, "actor" text not null, "action" text not null, "resource_type" text not null, "resource_id" text not null, "data" jsonb null, "request_id" text null, "idempotency_key" text null, constraint "audit_log_pkey" primary key ("id"));`);
    this.addSql(`create index "audit_log_organization_id_index" on "audit_log" ("organization_id");`);
    this.addSql(`create index "audit_log_organization_id_resource_type_resource_id_index" on "audit_log" ("organization_id", "resource_type", "resource_id");`);
    this.addSql(`create index "audit_log_organization_id_created_at_index" on "audit_log" ("organization_id", "created_at");`);

    this.addSql(`create table "idempotency_keys" ("organization_id" uuid not null, "key" text not null, "request_hash" text not null, "method" text not null, "path" text not null, "state" text not null, "response_status" int null, "response_body" jsonb null, "created_at" timestamptz not null default now(), "completed_at" timestamptz null, constraint "idempotency_keys_pkey" primary key ("organization_id", "key"));`);
    this.addSql(`create index "idempotency_keys_created_at_index" on "idempotency_keys" ("created_at");`);

    this.addSql(`create table "organizations" ("id" uuid not null, "created_at" timestamptz not null default now(), "name" text not null, "draft_window_minutes" int not null, "proration_strategy" text not null default 'prorated_immediately', constraint "organizations_pkey" primary key ("id"));`);

    this.addSql(`create table "outbox_messages" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "type" text not null, "payload" jsonb not null, "dedupe_key" text null, "dispatched_at" timestamptz null, constraint "outbox_messages_pkey" primary key ("id"));`);
    this.addSql(`create index "outbox_messages_organization_id_index" on "outbox_messages" ("organization_id");`);
    this.addSql(`create index "outbox_messages_dispatched_at_created_at_index" on "outbox_messages" ("dispatched_at", "created_at");`);
    this.addSql(`alter table "outbox_messages" add constraint "outbox_messages_organization_id_dedupe_key_unique" unique ("organization_id", "dedupe_key");`);

    this.addSql(`alter table "api_keys" add constraint "api_keys_role_check" check("role" in ('admin', 'finance', 'support', 'auditor', 'ingest'));`);
    this.addSql(`alter table "idempotency_keys" add constraint "idempotency_keys_state_check" check("state" in ('in_progress', 'completed'));`);
    this.addSql(`alter table "organizations" add constraint "organizations_proration_strategy_check" check("proration_strategy" in ('prorated_immediately', 'prorated_next_invoice', 'difference_immediately', 'full_immediately'));`);
    this.addSql(`alter table "outbox_messages" add constraint "outbox_messages_type_check" check("type" in ('subscription.plan_changed', 'subscription.converted', 'allowance.rolled_over', 'allowance.threshold_reached', 'invoice.finalized', 'credit_note.created', 'exception.opened', 'exception.escalated', 'exception.assigned', 'exception.resolved', 'exception.waived', 'exception.reopened', 'period.closed'));`);

    // Hand-written: what the entity metadata cannot express.
    // The audit log is append-only: an UPDATE or DELETE fails whoever issues it.
    this.addSql(`create function closebook_reject_change() returns trigger language plpgsql as $$
      begin
        raise exception '% is append-only: % refused', tg_table_name, tg_op using errcode = 'check_violation';
      end $$;`);
    this.addSql(`create trigger audit_log_append_only before update or delete on "audit_log"
      for each row execute function closebook_reject_change();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "api_keys" cascade;`);
    this.addSql(`drop function if exists closebook_reject_change() cascade;`);

    this.addSql(`drop table if exists "audit_log" cascade;`);

    this.addSql(`drop table if exists "idempotency_keys" cascade;`);

    this.addSql(`drop table if exists "organizations" cascade;`);

    this.addSql(`drop table if exists "outbox_messages" cascade;`);
  }

}
