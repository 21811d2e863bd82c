import { Migration } from '@mikro-orm/migrations';

/**
 * Every invoice carries its accounting date (`issue_date`), the business date it posts on whatever
 * day the code ran (docs/ledger.md "Accounting dates"): a period invoice on the last day of its
 * period, an opening invoice on its subscription's start day, a transition invoice on its change's
 * effective day. Existing rows get the same rule; the immutability trigger is paused for that one
 * backfill (a finalized invoice otherwise refuses every update), in this migration's transaction.
 */
export class Migration20261206080000_invoice_issue_date extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "invoices" add column "issue_date" date null;`);
    this.addSql(`alter table "invoices" disable trigger "invoices_frozen";`);
    this.addSql(`update "invoices" i set "issue_date" = ((i.period_end - interval '1 millisecond') at time zone 'UTC')::date where i.kind = 'period';`);
    this.addSql(`update "invoices" i set "issue_date" = (s.started_at at time zone 'UTC')::date from "subscriptions" s where s.id = i.subscription_id and i.kind = 'opening';`);
    this.addSql(`update "invoices" i set "issue_date" = (c.effective_at at time zone 'UTC')::date from "subscription_changes" c
                  where i.kind = 'transition' and i.source_key = 'transition:' || c.id::text;`);
    this.addSql(`update "invoices" i set "issue_date" = (i.created_at at time zone 'UTC')::date where i.issue_date is null;`);
    this.addSql(`alter table "invoices" enable trigger "invoices_frozen";`);
    this.addSql(`alter table "invoices" alter column "issue_date" set not null;`);
    this.addSql(`create index "invoices_organization_id_issue_date_index" on "invoices" ("organization_id", "issue_date");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "invoices_organization_id_issue_date_index";`);
    this.addSql(`alter table "invoices" drop column "issue_date";`);
  }

}
