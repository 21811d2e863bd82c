import { Migration } from '@mikro-orm/migrations';

export class Migration20261123210000_invoicing extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create table "document_sequences" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "kind" text not null, "last" int not null, constraint "document_sequences_pkey" primary key ("id"));`);
    this.addSql(`create index "document_sequences_organization_id_index" on "document_sequences" ("organization_id");`);
    this.addSql(`alter table "document_sequences" add constraint "document_sequences_organization_id_kind_unique" unique ("organization_id", "kind");`);

    this.addSql(`create table "invoice_pending_items" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "kind" text check ("kind" in ('deferred_line', 'adjustment', 'credit')) not null, "payload" jsonb not null, "billable_from" timestamptz not null, "source_type" text not null, "source_id" text not null, "description" text not null, constraint "invoice_pending_items_pkey" primary key ("id"));`);
    this.addSql(`create index "invoice_pending_items_organization_id_index" on "invoice_pending_items" ("organization_id");`);
    this.addSql(`create index "invoice_pending_items_source_type_source_id_index" on "invoice_pending_items" ("source_type", "source_id");`);
    this.addSql(`create index "invoice_pending_items_subscription_id_billable_from_index" on "invoice_pending_items" ("subscription_id", "billable_from");`);

    this.addSql(`create table "on_demand_charges" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "description" text not null, "quantity" numeric not null, "unit_amount" numeric not null, "date" timestamptz not null, "product_key" text null, constraint "on_demand_charges_pkey" primary key ("id"), constraint on_demand_charges_amounts_check check (quantity > 0 and unit_amount >= 0));`);
    this.addSql(`create index "on_demand_charges_organization_id_index" on "on_demand_charges" ("organization_id");`);
    this.addSql(`create index "on_demand_charges_subscription_id_date_index" on "on_demand_charges" ("subscription_id", "date");`);

    this.addSql(`create table "invoices" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "customer_id" uuid not null, "subscription_id" uuid not null, "kind" text check ("kind" in ('opening', 'period', 'transition')) not null, "billing_period_id" uuid null, "source_key" text not null, "period_start" timestamptz not null, "period_end" timestamptz not null, "status" text check ("status" in ('draft', 'finalized', 'paid', 'void')) not null default 'draft', "currency" text not null, "subtotal" numeric not null, "tax_amount" numeric not null, "total" numeric not null, "tax_rate" numeric null, "tax_line" jsonb null, "number" text null, "finalize_after" timestamptz not null, "finalized_at" timestamptz null, "due_at" timestamptz null, "paid_at" timestamptz null, "voided_at" timestamptz null, "content_hash" text not null, "rated_at" timestamptz not null, "rating_count" int not null default 1, "rating_input" jsonb null, "allowance" jsonb null, constraint "invoices_pkey" primary key ("id"), constraint invoices_period_bounds_check check (period_end > period_start), constraint invoices_period_has_billing_period_check check (kind <> 'period' or billing_period_id is not null));`);
    this.addSql(`create index "invoices_organization_id_index" on "invoices" ("organization_id");`);
    this.addSql(`create index "invoices_customer_id_index" on "invoices" ("customer_id");`);
    this.addSql(`create index "invoices_billing_period_id_index" on "invoices" ("billing_period_id");`);
    this.addSql(`create index "invoices_status_finalize_after_index" on "invoices" ("status", "finalize_after");`);
    this.addSql(`create index "invoices_subscription_id_period_start_index" on "invoices" ("subscription_id", "period_start");`);
    this.addSql(`create index "invoices_organization_id_created_at_index" on "invoices" ("organization_id", "created_at");`);
    this.addSql(`create unique index "invoices_one_opening_invoice" on "invoices" ("subscription_id") where "kind" = 'opening';`);
    this.addSql(`create unique index "invoices_one_period_invoice" on "invoices" ("subscription_id", "billing_period_id") where "kind" = 'period';`);
    this.addSql(`alter table "invoices" add constraint "invoices_organization_id_number_unique" unique ("organization_id", "number");`);
    this.addSql(`alter table "invoices" add constraint "invoices_organization_id_source_key_unique" unique ("organization_id", "source_key");`);

    this.addSql(`create table "payments" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "invoice_id" uuid not null, "customer_id" uuid not null, "amount" numeric not null, "currency" text not null, "received_at" timestamptz not null, "reference" text not null, constraint "payments_pkey" primary key ("id"));`);
    this.addSql(`create index "payments_organization_id_index" on "payments" ("organization_id");`);
    this.addSql(`create index "payments_customer_id_index" on "payments" ("customer_id");`);
    this.addSql(`create index "payments_organization_id_created_at_index" on "payments" ("organization_id", "created_at");`);
    this.addSql(`alter table "payments" add constraint "payments_invoice_id_reference_unique" unique ("invoice_id", "reference");`);

    this.addSql(`create table "invoice_lines" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "invoice_id" uuid not null, "position" int not null, "line_key" text not null, "type" text check ("type" in ('base_fee', 'seat', 'addon', 'usage_included', 'usage_overage', 'proration_credit', 'proration_charge', 'on_demand', 'adjustment', 'credit')) not null, "product_key" text null, "price_key" text null, "period_start" timestamptz not null, "period_end" timestamptz not null, "quantity" numeric not null, "unit_amount" numeric null, "tiers" jsonb null, "price" jsonb null, "amount_exact" numeric not null, "amount" numeric not null, "currency" text not null, "description" text not null, "proration" jsonb null, "steps" jsonb not null, "meta" jsonb not null, "source_type" text check ("source_type" in ('on_demand_charge', 'pending_item', 'subscription_change')) null, "source_id" uuid null, constraint "invoice_lines_pkey" primary key ("id"));`);
    this.addSql(`create index "invoice_lines_organization_id_index" on "invoice_lines" ("organization_id");`);
    this.addSql(`create index "invoice_lines_source_type_source_id_index" on "invoice_lines" ("source_type", "source_id");`);
    this.addSql(`alter table "invoice_lines" add constraint "invoice_lines_invoice_id_line_key_unique" unique ("invoice_id", "line_key");`);

    this.addSql(`create table "credit_notes" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "invoice_id" uuid not null, "customer_id" uuid not null, "number" text not null, "reason" text not null, "currency" text not null, "subtotal" numeric not null, "tax_amount" numeric not null, "total" numeric not null, constraint "credit_notes_pkey" primary key ("id"));`);
    this.addSql(`create index "credit_notes_organization_id_index" on "credit_notes" ("organization_id");`);
    this.addSql(`create index "credit_notes_customer_id_index" on "credit_notes" ("customer_id");`);
    this.addSql(`create index "credit_notes_invoice_id_index" on "credit_notes" ("invoice_id");`);
    this.addSql(`alter table "credit_notes" add constraint "credit_notes_organization_id_number_unique" unique ("organization_id", "number");`);

    this.addSql(`create table "credit_note_lines" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "credit_note_id" uuid not null, "invoice_line_id" uuid not null, "quantity" numeric null, "amount" numeric not null, "description" text not null, constraint "credit_note_lines_pkey" primary key ("id"));`);
    this.addSql(`create index "credit_note_lines_organization_id_index" on "credit_note_lines" ("organization_id");`);
    this.addSql(`create index "credit_note_lines_credit_note_id_index" on "credit_note_lines" ("credit_note_id");`);
    this.addSql(`create index "credit_note_lines_invoice_line_id_index" on "credit_note_lines" ("invoice_line_id");`);

    this.addSql(`create table "allowance_grants" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "invoice_id" uuid not null, "grant_id" text not null, "kind" text check ("kind" in ('period', 'rollover')) not null, "product_key" text not null, "price_key" text null, "quantity" numeric not null, "granted_in_period" timestamptz not null, "expires_after_period" timestamptz not null, "carried_from_period" timestamptz null, "grant" jsonb not null, constraint "allowance_grants_pkey" primary key ("id"));`);
    this.addSql(`create index "allowance_grants_organization_id_index" on "allowance_grants" ("organization_id");`);
    this.addSql(`create index "allowance_grants_invoice_id_index" on "allowance_grants" ("invoice_id");`);
    this.addSql(`create index "allowance_grants_subscription_id_product_key_grant_6d43b_index" on "allowance_grants" ("subscription_id", "product_key", "granted_in_period");`);
    this.addSql(`alter table "allowance_grants" add constraint "allowance_grants_subscription_id_grant_id_unique" unique ("subscription_id", "grant_id");`);

    this.addSql(`create table "allowance_expiries" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "invoice_id" uuid not null, "grant_id" text not null, "kind" text check ("kind" in ('period', 'rollover')) not null, "period_start" timestamptz not null, "product_key" text not null, "price_key" text null, "unused" numeric not null, "carried" numeric not null, "expired" numeric not null, "carried_to" text null, constraint "allowance_expiries_pkey" primary key ("id"));`);
    this.addSql(`create index "allowance_expiries_organization_id_index" on "allowance_expiries" ("organization_id");`);
    this.addSql(`create index "allowance_expiries_invoice_id_index" on "allowance_expiries" ("invoice_id");`);
    this.addSql(`create index "allowance_expiries_subscription_id_grant_id_index" on "allowance_expiries" ("subscription_id", "grant_id");`);

    this.addSql(`create table "allowance_drawdowns" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "invoice_id" uuid not null, "grant_id" text not null, "period_start" timestamptz not null, "product_key" text not null, "price_key" text null, "drawn" numeric not null, constraint "allowance_drawdowns_pkey" primary key ("id"));`);
    this.addSql(`create index "allowance_drawdowns_organization_id_index" on "allowance_drawdowns" ("organization_id");`);
    this.addSql(`create index "allowance_drawdowns_invoice_id_index" on "allowance_drawdowns" ("invoice_id");`);
    this.addSql(`create index "allowance_drawdowns_subscription_id_grant_id_period_start_index" on "allowance_drawdowns" ("subscription_id", "grant_id", "period_start");`);

    this.addSql(`create table "subscription_conversions" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "change_id" uuid not null, "customer_id" uuid not null, "from_plan_version_id" uuid not null, "to_plan_version_id" uuid not null, "cohort_month" text not null, "started_at" timestamptz not null, "converted_at" timestamptz not null, "days_to_convert" int not null, constraint "subscription_conversions_pkey" primary key ("id"));`);
    this.addSql(`create index "subscription_conversions_organization_id_index" on "subscription_conversions" ("organization_id");`);
    this.addSql(`create index "subscription_conversions_subscription_id_index" on "subscription_conversions" ("subscription_id");`);
    this.addSql(`alter table "subscription_conversions" add constraint "subscription_conversions_change_id_unique" unique ("change_id");`);

    this.addSql(`create table "late_usage" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "customer_id" uuid not null, "invoice_id" uuid not null, "period_start" timestamptz not null, "period_end" timestamptz not null, "product_key" text not null, "price_key" text not null, "rollup_id" uuid not null, "billed_quantity" numeric not null, "previous_quantity" numeric not null, "quantity" numeric not null, "quantity_delta" numeric not null, "amount" numeric not null, "currency" text not null, "event_count" bigint not null, "digest" bigint not null, "steps" jsonb not null, "status" text check ("status" in ('open', 'billed', 'waived')) not null default 'open', constraint "late_usage_pkey" primary key ("id"));`);
    this.addSql(`create index "late_usage_organization_id_index" on "late_usage" ("organization_id");`);
    this.addSql(`create index "late_usage_subscription_id_index" on "late_usage" ("subscription_id");`);
    this.addSql(`create index "late_usage_rollup_id_index" on "late_usage" ("rollup_id");`);
    this.addSql(`create index "late_usage_organization_id_status_period_start_index" on "late_usage" ("organization_id", "status", "period_start");`);
    this.addSql(`alter table "late_usage" add constraint "late_usage_invoice_id_product_key_price_key_event_a3473_unique" unique ("invoice_id", "product_key", "price_key", "event_count", "digest");`);

    this.addSql(`create table "invoice_rollups" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "invoice_id" uuid not null, "invoice_line_id" uuid null, "rollup_id" uuid not null, "product_key" text not null, "price_key" text not null, "event_count" bigint not null, "aggregate" numeric not null, "digest" bigint not null, constraint "invoice_rollups_pkey" primary key ("id"));`);
    this.addSql(`create index "invoice_rollups_organization_id_index" on "invoice_rollups" ("organization_id");`);
    this.addSql(`create index "invoice_rollups_rollup_id_index" on "invoice_rollups" ("rollup_id");`);
    this.addSql(`create index "invoice_rollups_invoice_line_id_index" on "invoice_rollups" ("invoice_line_id");`);
    this.addSql(`create index "invoice_rollups_invoice_id_index" on "invoice_rollups" ("invoice_id");`);

    this.addSql(`alter table "invoice_pending_items" add constraint "invoice_pending_items_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "on_demand_charges" add constraint "on_demand_charges_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "invoices" add constraint "invoices_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "invoices" add constraint "invoices_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "invoices" add constraint "invoices_billing_period_id_foreign" foreign key ("billing_period_id") references "billing_periods" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "payments" add constraint "payments_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "payments" add constraint "payments_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "invoice_lines" add constraint "invoice_lines_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "credit_notes" add constraint "credit_notes_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "credit_notes" add constraint "credit_notes_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "credit_note_lines" add constraint "credit_note_lines_credit_note_id_foreign" foreign key ("credit_note_id") references "credit_notes" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "credit_note_lines" add constraint "credit_note_lines_invoice_line_id_foreign" foreign key ("invoice_line_id") references "invoice_lines" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "allowance_grants" add constraint "allowance_grants_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "allowance_grants" add constraint "allowance_grants_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "allowance_expiries" add constraint "allowance_expiries_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "allowance_expiries" add constraint "allowance_expiries_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "allowance_drawdowns" add constraint "allowance_drawdowns_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "allowance_drawdowns" add constraint "allowance_drawdowns_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "subscription_conversions" add constraint "subscription_conversions_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "subscription_conversions" add constraint "subscription_conversions_change_id_foreign" foreign key ("change_id") references "subscription_changes" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "late_usage" add constraint "late_usage_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "late_usage" add constraint "late_usage_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "late_usage" add constraint "late_usage_rollup_id_foreign" foreign key ("rollup_id") references "usage_rollups" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "invoice_rollups" add constraint "invoice_rollups_invoice_id_foreign" foreign key ("invoice_id") references "invoices" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "invoice_rollups" add constraint "invoice_rollups_invoice_line_id_foreign" foreign key ("invoice_line_id") references "invoice_lines" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "invoice_rollups" add constraint "invoice_rollups_rollup_id_foreign" foreign key ("rollup_id") references "usage_rollups" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "subscription_changes" add column "canceled_at" timestamptz null;`);

    // Hand-written: what the entity metadata cannot express.
    // An invoice is born a draft. A draft may change (re-rating) and become finalized or void; a
    // non-draft invoice refuses every UPDATE and DELETE except the status moves finalized -> paid |
    // void that touch nothing but status, paid_at and voided_at.
    this.addSql(`create function closebook_invoice_frozen() returns trigger language plpgsql as $$
      begin
        if tg_op = 'INSERT' then
          if new.status <> 'draft' then
            raise exception 'invoice % must be created as a draft, not %', new.id, new.status using errcode = 'check_violation';
          end if;
          return new;
        end if;
        if old.status = 'draft' then
          if tg_op = 'DELETE' then return old; end if;
          if new.status in ('draft', 'finalized', 'void') then return new; end if;
          raise exception 'invoice % is a draft: % to % refused (finalize it first)', old.id, old.status, new.status using errcode = 'check_violation';
        end if;
        if tg_op = 'UPDATE' and old.status = 'finalized' and new.status in ('paid', 'void')
           and (to_jsonb(new) - array['status', 'paid_at', 'voided_at']) = (to_jsonb(old) - array['status', 'paid_at', 'voided_at']) then
          return new;
        end if;
        raise exception 'invoice % is % and immutable: % refused (only finalized -> paid | void is allowed)', old.id, old.status, tg_op
          using errcode = 'check_violation';
      end $$;`);
    this.addSql(`create trigger invoices_frozen before insert or update or delete on "invoices"
      for each row execute function closebook_invoice_frozen();`);
    // The rows of an invoice (lines, rollup links, allowance ledger) follow it: written while it is a
    // draft, frozen once it is not. The parent row is read FOR SHARE, so a concurrent finalization waits.
    this.addSql(`create function closebook_invoice_rows_frozen() returns trigger language plpgsql as $$
      declare s text;
      begin
        if tg_op <> 'INSERT' then
          select status into s from invoices where id = old.invoice_id for share;
          if s is not null and s <> 'draft' then
            raise exception '% of invoice % (%) are immutable: % refused', tg_table_name, old.invoice_id, s, tg_op using errcode = 'check_violation';
          end if;
        end if;
        if tg_op = 'DELETE' then return old; end if;
        select status into s from invoices where id = new.invoice_id for share;
        if s is not null and s <> 'draft' then
          raise exception '% of invoice % (%) are immutable: % refused', tg_table_name, new.invoice_id, s, tg_op using errcode = 'check_violation';
        end if;
        return new;
      end $$;`);
    for (const t of ['invoice_lines', 'invoice_rollups', 'allowance_grants', 'allowance_drawdowns', 'allowance_expiries']) {
      this.addSql(`create trigger ${t}_frozen before insert or update or delete on "${t}"
        for each row execute function closebook_invoice_rows_frozen();`);
    }
    // Credit notes and payments are documents of record: never updated, never deleted.
    this.addSql(`create function closebook_document_immutable() returns trigger language plpgsql as $$
      begin
        raise exception '% rows are immutable: % refused', tg_table_name, tg_op using errcode = 'check_violation';
      end $$;`);
    for (const t of ['credit_notes', 'credit_note_lines', 'payments']) {
      this.addSql(`create trigger ${t}_immutable before update or delete on "${t}"
        for each row execute function closebook_document_immutable();`);
    }
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists closebook_invoice_frozen() cascade;`);
    this.addSql(`drop function if exists closebook_invoice_rows_frozen() cascade;`);
    this.addSql(`drop function if exists closebook_document_immutable() cascade;`);
    this.addSql(`alter table "payments" drop constraint "payments_invoice_id_foreign";`);

    this.addSql(`alter table "invoice_lines" drop constraint "invoice_lines_invoice_id_foreign";`);

    this.addSql(`alter table "credit_notes" drop constraint "credit_notes_invoice_id_foreign";`);

    this.addSql(`alter table "allowance_grants" drop constraint "allowance_grants_invoice_id_foreign";`);

    this.addSql(`alter table "allowance_expiries" drop constraint "allowance_expiries_invoice_id_foreign";`);

    this.addSql(`alter table "allowance_drawdowns" drop constraint "allowance_drawdowns_invoice_id_foreign";`);

    this.addSql(`alter table "late_usage" drop constraint "late_usage_invoice_id_foreign";`);

    this.addSql(`alter table "invoice_rollups" drop constraint "invoice_rollups_invoice_id_foreign";`);

    this.addSql(`alter table "credit_note_lines" drop constraint "credit_note_lines_invoice_line_id_foreign";`);

    this.addSql(`alter table "invoice_rollups" drop constraint "invoice_rollups_invoice_line_id_foreign";`);

    this.addSql(`alter table "credit_note_lines" drop constraint "credit_note_lines_credit_note_id_foreign";`);

    this.addSql(`drop table if exists "document_sequences" cascade;`);

    this.addSql(`drop table if exists "invoice_pending_items" cascade;`);

    this.addSql(`drop table if exists "on_demand_charges" cascade;`);

    this.addSql(`drop table if exists "invoices" cascade;`);

    this.addSql(`drop table if exists "payments" cascade;`);

    this.addSql(`drop table if exists "invoice_lines" cascade;`);

    this.addSql(`drop table if exists "credit_notes" cascade;`);

    this.addSql(`drop table if exists "credit_note_lines" cascade;`);

    this.addSql(`drop table if exists "allowance_grants" cascade;`);

    this.addSql(`drop table if exists "allowance_expiries" cascade;`);

    this.addSql(`drop table if exists "allowance_drawdowns" cascade;`);

    this.addSql(`drop table if exists "subscription_conversions" cascade;`);

    this.addSql(`drop table if exists "late_usage" cascade;`);

    this.addSql(`drop table if exists "invoice_rollups" cascade;`);

    this.addSql(`alter table "subscription_changes" drop column "canceled_at";`);
  }

}
