import { Migration } from '@mikro-orm/migrations';

/** Reconciliation checks and runs: tolerances, runs with their captures, results (docs/reconciliation.md). */
export class Migration20261123222000_reconciliation extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "reconciliation_results" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "run_id" uuid not null, "period" text not null, "check_key" text not null, "item_key" text not null, "item_type" text not null, "expected" numeric null, "actual" numeric null, "variance" numeric null, "tolerance" jsonb not null, "status" text check ("status" in ('pass', 'fail', 'warn')) not null, "currency" text null, "details" jsonb not null, "refs" jsonb not null, constraint "reconciliation_results_pkey" primary key ("id"));`);
    this.addSql(`create index "reconciliation_results_organization_id_index" on "reconciliation_results" ("organization_id");`);
    this.addSql(`create index "reconciliation_results_run_id_check_key_status_index" on "reconciliation_results" ("run_id", "check_key", "status");`);
    this.addSql(`alter table "reconciliation_results" add constraint "reconciliation_results_run_id_check_key_item_key_unique" unique ("run_id", "check_key", "item_key");`);

    this.addSql(`create table "reconciliation_runs" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "period" text not null, "status" text check ("status" in ('queued', 'running', 'passed', 'failed', 'error')) not null default 'queued', "started_by" text not null, "started_at" timestamptz null, "finished_at" timestamptz null, "checks" jsonb not null, "capture" jsonb not null, "capture_hash" text null, "inputs_fingerprint" jsonb not null, "error" text null, constraint "reconciliation_runs_pkey" primary key ("id"));`);
    this.addSql(`create index "reconciliation_runs_organization_id_index" on "reconciliation_runs" ("organization_id");`);
    this.addSql(`create index "reconciliation_runs_organization_id_period_created_at_index" on "reconciliation_runs" ("organization_id", "period", "created_at");`);

    this.addSql(`create table "reconciliation_tolerances" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "check_key" text check ("check_key" in ('events_rollups', 'rollups_lines', 'invoices_ledger', 'completeness', 'deferred_revenue', 'flux')) not null, "absolute" numeric null, "percent" numeric null, "mode" text check ("mode" in ('both', 'either')) not null default 'both', "updated_at" timestamptz not null default now(), constraint "reconciliation_tolerances_pkey" primary key ("id"));`);
    this.addSql(`create index "reconciliation_tolerances_organization_id_index" on "reconciliation_tolerances" ("organization_id");`);
    this.addSql(`alter table "reconciliation_tolerances" add constraint "reconciliation_tolerances_organization_id_check_key_unique" unique ("organization_id", "check_key");`);

    // Hand-written: results are a run's snapshot — append-only.
    this.addSql(`create or replace function reconciliation_results_append_only() returns trigger language plpgsql as $$
      begin
        raise exception 'reconciliation_results is append-only (a run is a snapshot)';
      end $$;`);
    this.addSql(`create trigger reconciliation_results_append_only before update or delete on "reconciliation_results"
      for each row execute function reconciliation_results_append_only();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "reconciliation_results" cascade;`);
    this.addSql(`drop table if exists "reconciliation_runs" cascade;`);
    this.addSql(`drop table if exists "reconciliation_tolerances" cascade;`);
    this.addSql(`drop function if exists reconciliation_results_append_only();`);
  }

}
