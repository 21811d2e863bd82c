import { Migration } from '@mikro-orm/migrations';

/** Deferral schedules remember the day their amount was booked: recognition never posts before it. */
export class Migration20261123224000_recognize_from extends Migration {

  override async up(): Promise<void> {
    this.addSql(`alter table "deferral_schedules" add column "recognize_from" date null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "deferral_schedules" drop column "recognize_from";`);
  }

}
