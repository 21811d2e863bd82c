import type { Constructor } from '@mikro-orm/core';
import type { Migration } from '@mikro-orm/migrations';
import { Migration20261123182311_platform } from './Migration20261123182311_platform';
import { Migration20261123190100_webhooks } from './Migration20261123190100_webhooks';
import { Migration20261123190500_ledger } from './Migration20261123190500_ledger';
import { Migration20261123191500_catalog_subscriptions } from './Migration20261123191500_catalog_subscriptions';
import { Migration20261123200000_metering } from './Migration20261123200000_metering';
import { Migration20261123210000_invoicing } from './Migration20261123210000_invoicing';
import { Migration20261123221000_exports } from './Migration20261123221000_exports';
import { Migration20261123220000_exceptions } from './Migration20261123220000_exceptions';
import { Migration20261123222000_reconciliation } from './Migration20261123222000_reconciliation';
import { Migration20261123223000_close } from './Migration20261123223000_close';
import { Migration20261123224000_recognize_from } from './Migration20261123224000_recognize_from';
import { Migration20261124050000_event_digest } from './Migration20261124050000_event_digest';
import { Migration20261124060000_late_usage_billed_once } from './Migration20261124060000_late_usage_billed_once';
import { Migration20261124070000_events_by_meter_index } from './Migration20261124070000_events_by_meter_index';
import { Migration20261206080000_invoice_issue_date } from './Migration20261206080000_invoice_issue_date';
import { Migration20261206090000_period_closes } from './Migration20261206090000_period_closes';

/**
 * Every migration, in order. A fixed list (rather than a folder glob) so the same code runs from
 * TypeScript in tests and from compiled JavaScript in production.
 */
export const MIGRATIONS: { name: string; class: Constructor<Migration> }[] = [{ name: 'Migration20261123182311_platform', class: Migration20261123182311_platform }, { name: 'Migration20261123190100_webhooks', class: Migration20261123190100_webhooks }, { name: 'Migration20261123190500_ledger', class: Migration20261123190500_ledger }, { name: 'Migration20261123191500_catalog_subscriptions', class: Migration20261123191500_catalog_subscriptions }, { name: 'Migration20261123200000_metering', class: Migration20261123200000_metering }, { name: 'Migration20261123210000_invoicing', class: Migration20261123210000_invoicing }, { name: 'Migration20261123221000_exports', class: Migration20261123221000_exports }, { name: 'Migration20261123220000_exceptions', class: Migration20261123220000_exceptions }, { name: 'Migration20261123222000_reconciliation', class: Migration20261123222000_reconciliation }, { name: 'Migration20261123223000_close', class: Migration20261123223000_close }, { name: 'Migration20261123224000_recognize_from', class: Migration20261123224000_recognize_from }, { name: 'Migration20261124050000_event_digest', class: Migration20261124050000_event_digest }, { name: 'Migration20261124060000_late_usage_billed_once', class: Migration20261124060000_late_usage_billed_once }, { name: 'Migration20261124070000_events_by_meter_index', class: Migration20261124070000_events_by_meter_index }, { name: 'Migration20261206080000_invoice_issue_date', class: Migration20261206080000_invoice_issue_date }, { name: 'Migration20261206090000_period_closes', class: Migration20261206090000_period_closes }];
