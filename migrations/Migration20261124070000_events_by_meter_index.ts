import { Migration } from '@mikro-orm/migrations';

/**
 * The events' read index becomes (customer_id, event_name, ts). Every read of a period's usage
 * selects a meter's events — by customer, by the meter's event name, in a time range (rollups, the
 * live allowance state, the events→rollups check, explanations, tie-outs) — and with the event name
 * in the key each meter's index scan returns only its own events. On (customer_id, ts) a period's
 * events were fetched once per meter of the plan and filtered by name: six heap fetches an event
 * for a six-meter plan (1.2M rows fetched for 200,000 events in a page of 200 pairs); now one.
 * Reads by customer and time alone (is any event in this period?) still use the customer prefix.
 * Replaced, not added beside: ingest maintains one secondary index per partition either way.
 */
export class Migration20261124070000_events_by_meter_index extends Migration {

  override async up(): Promise<void> {
    this.addSql(`create index "usage_events_customer_id_event_name_ts_index" on "usage_events" ("customer_id", "event_name", "ts");`);
    this.addSql(`drop index "usage_events_customer_id_ts_index";`);
  }

  override async down(): Promise<void> {
    this.addSql(`create index "usage_events_customer_id_ts_index" on "usage_events" ("customer_id", "ts");`);
    this.addSql(`drop index "usage_events_customer_id_event_name_ts_index";`);
  }

}
