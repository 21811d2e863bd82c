import { Migration } from '@mikro-orm/migrations';

export class Migration20261123223000_close extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "close_settings" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "required_sign_offs" jsonb not null, "updated_at" timestamptz null, constraint "close_settings_pkey" primary key ("id"));`);
    this.addSql(`create index "close_settings_organization_id_index" on "close_settings" ("organization_id");`);
    this.addSql(`alter table "close_settings" add constraint "close_settings_organization_id_unique" unique ("organization_id");`);

    this.addSql(`create table "close_sign_offs" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "period" text not null, "step" text not null, "signer_key_id" uuid null, "signer" text not null, "signer_role" text not null, "note" text null, "fingerprints" jsonb not null, "runs" jsonb not null, "withdrawn_at" timestamptz null, "withdrawn_reason" text null, constraint "close_sign_offs_pkey" primary key ("id"));`);
    this.addSql(`create index "close_sign_offs_organization_id_index" on "close_sign_offs" ("organization_id");`);
    this.addSql(`create index "close_sign_offs_organization_id_period_index" on "close_sign_offs" ("organization_id", "period");`);
    this.addSql(`create unique index "close_sign_offs_one_active_step" on "close_sign_offs" ("organization_id", "period", "step") where "withdrawn_at" is null;`);

    // Hand-written: a sign-off is history — it may be withdrawn once, never edited otherwise or deleted.
    this.addSql(`create or replace function close_sign_offs_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then raise exception 'close_sign_offs is append-only'; end if;
  if old.withdrawn_at is not null or new.withdrawn_at is null
     or (to_jsonb(new) - 'withdrawn_at' - 'withdrawn_reason') <> (to_jsonb(old) - 'withdrawn_at' - 'withdrawn_reason') then
    raise exception 'a sign-off can only be withdrawn, once';
  end if;
  return new;
end $$;`);
    this.addSql(`create trigger close_sign_offs_guard before update or delete on "close_sign_offs" for each row execute function close_sign_offs_guard();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "close_sign_offs" cascade;`);
    this.addSql(`drop table if exists "close_settings" cascade;`);
    this.addSql(`drop function if exists close_sign_offs_guard();`);
  }

}
