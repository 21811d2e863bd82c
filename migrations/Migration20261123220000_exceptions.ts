import { Migration } from '@mikro-orm/migrations';

export class Migration20261123220000_exceptions extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "exception_queues" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "key" text not null, "name" text not null, "owner" text not null, "escalation_contact" text not null, "review_cadence" text check ("review_cadence" in ('daily', 'weekly', 'biweekly', 'monthly')) not null, "sla_hours" int not null, "required_evidence" jsonb not null, "exception_types" text[] not null, "updated_at" timestamptz not null default now(), constraint "exception_queues_pkey" primary key ("id"), constraint exception_queues_key_check check (key ~ '^[a-z0-9][a-z0-9_-]{0,62}$'), constraint exception_queues_sla_hours_check check (sla_hours > 0));`);
    this.addSql(`create index "exception_queues_organization_id_index" on "exception_queues" ("organization_id");`);
    this.addSql(`alter table "exception_queues" add constraint "exception_queues_organization_id_key_unique" unique ("organization_id", "key");`);

    this.addSql(`create table "exceptions" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "queue_id" uuid not null, "type" text check ("type" in ('usage_integrity', 'billing_variance', 'ledger_posting', 'completeness', 'deferred_revenue', 'flux', 'late_usage', 'dispute', 'summary')) not null, "check_key" text not null, "item_key" text not null, "period" text not null, "status" text check ("status" in ('open', 'assigned', 'resolved', 'waived')) not null default 'open', "title" text not null, "currency" text null, "expected" numeric null, "actual" numeric null, "variance" numeric null, "tolerance" jsonb null, "details" jsonb not null default '{}', "invoice_id" uuid null, "invoice_line_id" uuid null, "subscription_id" uuid null, "customer_id" uuid null, "assignee" text null, "escalated" boolean not null default false, "escalated_at" timestamptz null, "sla_due_at" timestamptz not null, "opened_at" timestamptz not null, "resolved_at" timestamptz null, "resolution_kind" text check ("resolution_kind" in ('auto', 'corrected', 'accepted')) null, "resolution_note" text null, "evidence" jsonb null, "past_resolutions" jsonb not null default '[]', "reopen_count" int not null default 0, "run_id" uuid null, "last_seen_at" timestamptz not null, "updated_at" timestamptz not null default now(), constraint "exceptions_pkey" primary key ("id"), constraint exceptions_resolution_check check ((status = 'resolved') = (resolution_kind is not null)), constraint exceptions_period_check check (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'));`);
    this.addSql(`create index "exceptions_organization_id_index" on "exceptions" ("organization_id");`);
    this.addSql(`create index "exceptions_queue_id_index" on "exceptions" ("queue_id");`);
    this.addSql(`create index "exceptions_invoice_id_index" on "exceptions" ("invoice_id");`);
    this.addSql(`create index "exceptions_status_sla_due_at_index" on "exceptions" ("status", "sla_due_at");`);
    this.addSql(`create index "exceptions_organization_id_created_at_index" on "exceptions" ("organization_id", "created_at");`);
    this.addSql(`create index "exceptions_organization_id_period_status_index" on "exceptions" ("organization_id", "period", "status");`);
    this.addSql(`alter table "exceptions" add constraint "exceptions_organization_id_check_key_item_key_period_unique" unique ("organization_id", "check_key", "item_key", "period");`);

    this.addSql(`create table "exception_comments" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "exception_id" uuid not null, "author_key_id" uuid null, "author" text not null, "body" text not null, constraint "exception_comments_pkey" primary key ("id"));`);
    this.addSql(`create index "exception_comments_organization_id_index" on "exception_comments" ("organization_id");`);
    this.addSql(`create index "exception_comments_exception_id_index" on "exception_comments" ("exception_id");`);

    this.addSql(`alter table "exceptions" add constraint "exceptions_queue_id_foreign" foreign key ("queue_id") references "exception_queues" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "exception_comments" add constraint "exception_comments_exception_id_foreign" foreign key ("exception_id") references "exceptions" ("id") on update restrict on delete cascade;`);

    // Hand-written: what the entity metadata cannot express.

    // An exception resolved as accepted keeps its note and evidence as they were: only a change of
    // status (a reopening, which moves them to past_resolutions) may touch them.
    this.addSql(`create or replace function exceptions_accepted_frozen() returns trigger language plpgsql as $$
      begin
        if old.status = 'resolved' and old.resolution_kind = 'accepted' and new.status = 'resolved'
           and (new.evidence is distinct from old.evidence or new.resolution_note is distinct from old.resolution_note
                or new.resolution_kind is distinct from old.resolution_kind or new.resolved_at is distinct from old.resolved_at) then
          raise exception 'exception % was resolved as accepted: its evidence is frozen', old.id using errcode = 'check_violation';
        end if;
        if new.past_resolutions is distinct from old.past_resolutions
           and not (new.past_resolutions @> old.past_resolutions and jsonb_array_length(new.past_resolutions) > jsonb_array_length(old.past_resolutions)) then
          raise exception 'exception % past resolutions are append-only', old.id using errcode = 'check_violation';
        end if;
        return new;
      end $$;`);
    this.addSql(`create trigger exceptions_accepted_frozen before update on "exceptions"
      for each row execute function exceptions_accepted_frozen();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "exception_comments" cascade;`);
    this.addSql(`drop table if exists "exceptions" cascade;`);
    this.addSql(`drop table if exists "exception_queues" cascade;`);
    this.addSql(`drop function if exists exceptions_accepted_frozen() cascade;`);
  }

}
