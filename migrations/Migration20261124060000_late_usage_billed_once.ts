import { Migration } from '@mikro-orm/migrations';

/**
 * Late usage is billed once: at most one pending item per late-usage row. `LateUsageService.bill`
 * already locks the row and returns the existing item; this makes it a database guarantee too.
 * Partial, because a subscription change may defer several items under one source id.
 */
export class Migration20261124060000_late_usage_billed_once extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create unique index "invoice_pending_items_late_usage_unique" on "invoice_pending_items" ("source_id") where "source_type" = 'late_usage';`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "invoice_pending_items_late_usage_unique";`);
  }

}
