import { Migration } from '@mikro-orm/migrations';

export class Migration20261123191500_catalog_subscriptions extends Migration {

  override async up(): Promise<void> {
    // Hand-written: the exclusion constraints below (one subscription in force per customer, no
    // overlapping periods or add-on ranges) need btree_gist for the "=" part of a gist index.
    this.addSql(`create extension if not exists btree_gist;`);

    this.addSql(`create table "customers" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "external_id" text not null, "name" text not null, "email" text null, "currency" text not null, "tax_rate" numeric not null default 0, constraint "customers_pkey" primary key ("id"), constraint customers_tax_rate_check check (tax_rate >= 0 and tax_rate <= 1));`);
    this.addSql(`create index "customers_organization_id_index" on "customers" ("organization_id");`);
    this.addSql(`alter table "customers" add constraint "customers_organization_id_external_id_unique" unique ("organization_id", "external_id");`);

    this.addSql(`create table "plans" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "key" text not null, "name" text not null, "currency" text not null, "interval" text check ("interval" in ('month', 'year')) not null, "allowance_rollover_default" boolean not null default false, "proration_strategy" text check ("proration_strategy" in ('prorated_immediately', 'prorated_next_invoice', 'difference_immediately', 'full_immediately')) null, constraint "plans_pkey" primary key ("id"));`);
    this.addSql(`create index "plans_organization_id_index" on "plans" ("organization_id");`);
    this.addSql(`alter table "plans" add constraint "plans_organization_id_key_unique" unique ("organization_id", "key");`);

    this.addSql(`create table "plan_versions" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "plan_id" uuid not null, "version" int not null, "status" text check ("status" in ('draft', 'published')) not null, "published_at" timestamptz null, "allowance_multiplier" numeric not null default 1, "document" jsonb not null, constraint "plan_versions_pkey" primary key ("id"));`);
    this.addSql(`create index "plan_versions_organization_id_index" on "plan_versions" ("organization_id");`);
    this.addSql(`alter table "plan_versions" add constraint "plan_versions_plan_id_version_unique" unique ("plan_id", "version");`);

    this.addSql(`create table "products" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "key" text not null, "name" text not null, "kind" text check ("kind" in ('recurring', 'metered', 'seat', 'addon', 'one_time')) not null, "meter_event_name" text null, "meter_aggregation" text check ("meter_aggregation" in ('count', 'sum', 'max', 'unique_count', 'latest')) null, "meter_property" text null, "meter_filter" jsonb null, "price_key_label" text null, "unit" text null, constraint "products_pkey" primary key ("id"));`);
    this.addSql(`create index "products_organization_id_index" on "products" ("organization_id");`);
    this.addSql(`create index "products_organization_id_meter_event_name_index" on "products" ("organization_id", "meter_event_name");`);
    this.addSql(`alter table "products" add constraint "products_organization_id_key_unique" unique ("organization_id", "key");`);

    this.addSql(`create table "plan_version_products" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "plan_version_id" uuid not null, "product_id" uuid not null, "product_key" text not null, "kind" text check ("kind" in ('recurring', 'metered', 'seat', 'addon', 'one_time')) not null, "position" int not null, "allowance" numeric null, "allowance_basis" text check ("allowance_basis" in ('fixed', 'per_seat')) null, "rollover_enabled" boolean null, "rollover_cap" numeric null, "rollover_expiry_periods" int null, "overage" text check ("overage" in ('bill', 'block')) null, "included_seats" int null, "price" jsonb null, "keyed_prices" jsonb null, constraint "plan_version_products_pkey" primary key ("id"));`);
    this.addSql(`create index "plan_version_products_organization_id_index" on "plan_version_products" ("organization_id");`);
    this.addSql(`create index "plan_version_products_product_id_index" on "plan_version_products" ("product_id");`);
    this.addSql(`alter table "plan_version_products" add constraint "plan_version_products_plan_version_id_product_id_unique" unique ("plan_version_id", "product_id");`);

    this.addSql(`create table "subscriptions" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "customer_id" uuid not null, "plan_version_id" uuid not null, "status" text check ("status" in ('active', 'canceled')) not null default 'active', "started_at" timestamptz not null, "ends_at" timestamptz null, "billing_anchor" smallint not null default 1, "seats" int not null default 1, constraint "subscriptions_pkey" primary key ("id"), constraint subscriptions_ends_after_start_check check (ends_at is null or ends_at > started_at), constraint subscriptions_seats_check check (seats >= 0), constraint subscriptions_billing_anchor_check check (billing_anchor >= 1 and billing_anchor <= 31));`);
    this.addSql(`create index "subscriptions_organization_id_index" on "subscriptions" ("organization_id");`);
    this.addSql(`create index "subscriptions_plan_version_id_index" on "subscriptions" ("plan_version_id");`);
    this.addSql(`alter table "subscriptions" add constraint "subscriptions_no_overlap" exclude using gist ("customer_id" with =, tstzrange("started_at", "ends_at") with &&);`);
    this.addSql(`create index "subscriptions_organization_id_customer_id_index" on "subscriptions" ("organization_id", "customer_id");`);

    this.addSql(`create table "billing_periods" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "period_start" timestamptz not null, "period_end" timestamptz not null, "seq" int not null, constraint "billing_periods_pkey" primary key ("id"), constraint billing_periods_bounds_check check (period_end > period_start and seq >= 1));`);
    this.addSql(`create index "billing_periods_organization_id_index" on "billing_periods" ("organization_id");`);
    this.addSql(`alter table "billing_periods" add constraint "billing_periods_no_overlap" exclude using gist ("subscription_id" with =, tstzrange("period_start", "period_end") with &&);`);
    this.addSql(`create index "billing_periods_organization_id_period_start_index" on "billing_periods" ("organization_id", "period_start");`);
    this.addSql(`alter table "billing_periods" add constraint "billing_periods_subscription_id_seq_unique" unique ("subscription_id", "seq");`);
    this.addSql(`alter table "billing_periods" add constraint "billing_periods_subscription_id_period_start_unique" unique ("subscription_id", "period_start");`);

    this.addSql(`create table "subscription_addons" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "product_id" uuid not null, "product_key" text not null, "quantity" int not null, "effective_from" timestamptz not null, "effective_to" timestamptz null, constraint "subscription_addons_pkey" primary key ("id"), constraint subscription_addons_range_check check (effective_to is null or effective_to > effective_from), constraint subscription_addons_quantity_check check (quantity > 0));`);
    this.addSql(`create index "subscription_addons_organization_id_index" on "subscription_addons" ("organization_id");`);
    this.addSql(`create index "subscription_addons_product_id_index" on "subscription_addons" ("product_id");`);
    this.addSql(`alter table "subscription_addons" add constraint "subscription_addons_no_overlap" exclude using gist ("subscription_id" with =, "product_id" with =, tstzrange("effective_from", "effective_to") with &&);`);
    this.addSql(`create index "subscription_addons_subscription_id_product_id_eff_b0bde_index" on "subscription_addons" ("subscription_id", "product_id", "effective_from");`);

    this.addSql(`create table "subscription_changes" ("id" uuid not null, "created_at" timestamptz not null default now(), "organization_id" uuid not null, "subscription_id" uuid not null, "kind" text check ("kind" in ('seats', 'addon', 'plan', 'cancel')) not null, "effective_at" timestamptz not null, "data" jsonb not null, "applied_at" timestamptz null, constraint "subscription_changes_pkey" primary key ("id"));`);
    this.addSql(`create index "subscription_changes_organization_id_index" on "subscription_changes" ("organization_id");`);
    this.addSql(`create index "subscription_changes_applied_at_effective_at_index" on "subscription_changes" ("applied_at", "effective_at");`);
    this.addSql(`create index "subscription_changes_subscription_id_effective_at_index" on "subscription_changes" ("subscription_id", "effective_at");`);

    this.addSql(`alter table "plan_versions" add constraint "plan_versions_plan_id_foreign" foreign key ("plan_id") references "plans" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "plan_version_products" add constraint "plan_version_products_plan_version_id_foreign" foreign key ("plan_version_id") references "plan_versions" ("id") on update restrict on delete cascade;`);
    this.addSql(`alter table "plan_version_products" add constraint "plan_version_products_product_id_foreign" foreign key ("product_id") references "products" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "subscriptions" add constraint "subscriptions_customer_id_foreign" foreign key ("customer_id") references "customers" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "subscriptions" add constraint "subscriptions_plan_version_id_foreign" foreign key ("plan_version_id") references "plan_versions" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "billing_periods" add constraint "billing_periods_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "subscription_addons" add constraint "subscription_addons_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);
    this.addSql(`alter table "subscription_addons" add constraint "subscription_addons_product_id_foreign" foreign key ("product_id") references "products" ("id") on update restrict on delete restrict;`);

    this.addSql(`alter table "subscription_changes" add constraint "subscription_changes_subscription_id_foreign" foreign key ("subscription_id") references "subscriptions" ("id") on update restrict on delete restrict;`);

    // Hand-written: what the entity metadata cannot express.
    // A published plan version is frozen: UPDATE or DELETE of it fails whoever issues it (publishing
    // is the UPDATE of a draft, so it passes), and so does any write to its products.
    this.addSql(`create function closebook_plan_version_frozen() returns trigger language plpgsql as $$
      begin
        if old.status = 'published' then
          raise exception 'plan version % (v%) is published and immutable: % refused', old.id, old.version, tg_op
            using errcode = 'check_violation';
        end if;
        if tg_op = 'DELETE' then return old; end if;
        return new;
      end $$;`);
    this.addSql(`create trigger plan_versions_frozen before update or delete on "plan_versions"
      for each row execute function closebook_plan_version_frozen();`);
    this.addSql(`create function closebook_plan_version_products_frozen() returns trigger language plpgsql as $$
      begin
        if (tg_op <> 'INSERT' and exists (select 1 from plan_versions v where v.id = old.plan_version_id and v.status = 'published'))
           or (tg_op <> 'DELETE' and exists (select 1 from plan_versions v where v.id = new.plan_version_id and v.status = 'published')) then
          raise exception 'the products of a published plan version are immutable: % refused', tg_op
            using errcode = 'check_violation';
        end if;
        if tg_op = 'DELETE' then return old; end if;
        return new;
      end $$;`);
    this.addSql(`create trigger plan_version_products_frozen before insert or update or delete on "plan_version_products"
      for each row execute function closebook_plan_version_products_frozen();`);
    // A subscription pins a published version, never a draft.
    this.addSql(`create function closebook_subscription_pins_published() returns trigger language plpgsql as $$
      begin
        if not exists (select 1 from plan_versions v where v.id = new.plan_version_id and v.status = 'published') then
          raise exception 'subscription % must pin a published plan version (% is not)', new.id, new.plan_version_id
            using errcode = 'check_violation';
        end if;
        return new;
      end $$;`);
    this.addSql(`create trigger subscriptions_pin_published before insert or update of plan_version_id on "subscriptions"
      for each row execute function closebook_subscription_pins_published();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop function if exists closebook_plan_version_frozen() cascade;`);
    this.addSql(`drop function if exists closebook_plan_version_products_frozen() cascade;`);
    this.addSql(`drop function if exists closebook_subscription_pins_published() cascade;`);
    this.addSql(`alter table "subscriptions" drop constraint "subscriptions_customer_id_foreign";`);

    this.addSql(`alter table "plan_versions" drop constraint "plan_versions_plan_id_foreign";`);

    this.addSql(`alter table "plan_version_products" drop constraint "plan_version_products_plan_version_id_foreign";`);

    this.addSql(`alter table "subscriptions" drop constraint "subscriptions_plan_version_id_foreign";`);

    this.addSql(`alter table "plan_version_products" drop constraint "plan_version_products_product_id_foreign";`);

    this.addSql(`alter table "subscription_addons" drop constraint "subscription_addons_product_id_foreign";`);

    this.addSql(`alter table "billing_periods" drop constraint "billing_periods_subscription_id_foreign";`);

    this.addSql(`alter table "subscription_addons" drop constraint "subscription_addons_subscription_id_foreign";`);

    this.addSql(`alter table "subscription_changes" drop constraint "subscription_changes_subscription_id_foreign";`);

    this.addSql(`drop table if exists "customers" cascade;`);

    this.addSql(`drop table if exists "plans" cascade;`);

    this.addSql(`drop table if exists "plan_versions" cascade;`);

    this.addSql(`drop table if exists "products" cascade;`);

    this.addSql(`drop table if exists "plan_version_products" cascade;`);

    this.addSql(`drop table if exists "subscriptions" cascade;`);

    this.addSql(`drop table if exists "billing_periods" cascade;`);

    this.addSql(`drop table if exists "subscription_addons" cascade;`);

    this.addSql(`drop table if exists "subscription_changes" cascade;`);
  }

}
