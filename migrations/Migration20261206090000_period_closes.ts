import { Migration } from '@mikro-orm/migrations';

/**
 * `period_closes`: the record of a month's close (who, when, the sign-offs, runs and results it
 * closed on), append-only like the sign-offs it freezes.
 */
export class Migration20261206090000_period_closes extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "period_closes" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "period" text not null, "closed_at" timestamptz not null, "closed_by" text not null, "closed_by_key_id" uuid null, "required_sign_offs" jsonb not null, "sign_offs" jsonb not null, "checks" jsonb not null, "exceptions" jsonb not null, constraint "period_closes_pkey" primary key ("id"));`);
    this.addSql(`create index "period_closes_organization_id_index" on "period_closes" ("organization_id");`);
    this.addSql(`create index "period_closes_organization_id_period_index" on "period_closes" ("organization_id", "period");`);
    this.addSql(`create or replace function period_closes_guard() returns trigger language plpgsql as $$
begin
  raise exception 'period_closes is append-only';
end $$;`);
    this.addSql(`create trigger period_closes_guard before update or delete on "period_closes" for each row execute function period_closes_guard();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "period_closes" cascade;`);
    this.addSql(`drop function if exists period_closes_guard();`);
  }

}
