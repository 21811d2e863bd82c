import { Migration } from '@mikro-orm/migrations';

export class Migration20261123221000_exports extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "exports" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "kind" text check ("kind" in ('audit_workbook')) not null, "period" text not null, "status" text check ("status" in ('queued', 'running', 'done', 'failed')) not null default 'queued', "progress" double precision not null default 0, "rows_written" bigint not null default 0, "rows_estimated" bigint null, "sheets" jsonb null, "file_path" text null, "size_bytes" bigint null, "sha256" text null, "error" text null, "requested_by" text not null, "requested_key_id" uuid null, "started_at" timestamptz null, "finished_at" timestamptz null, constraint "exports_pkey" primary key ("id"));`);
    this.addSql(`create index "exports_organization_id_index" on "exports" ("organization_id");`);
    this.addSql(`create index "exports_organization_id_created_at_index" on "exports" ("organization_id", "created_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "exports" cascade;`);
  }

}
