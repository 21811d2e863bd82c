import { Injectable } from '@nestjs/common';
import type { ReconciliationCheck } from './check';
import { CHECK_KEYS, type CheckKey } from './tolerance';
import { EventsRollupsCheck } from './events-rollups.check';
import { RollupsLinesCheck } from './rollups-lines.check';
import { InvoicesLedgerCheck } from './invoices-ledger.check';
import { CompletenessCheck } from './completeness.check';
import { DeferredRevenueCheck } from './deferred-revenue.check';
import { FluxCheck } from './flux.check';

export const CHECK_PROVIDERS = [EventsRollupsCheck, RollupsLinesCheck, InvoicesLedgerCheck, CompletenessCheck, DeferredRevenueCheck, FluxCheck];

/** The six checks of SPEC §6 by key, in run order. */
@Injectable()
export class ReconciliationChecks {
  private readonly byKey: Map<CheckKey, ReconciliationCheck>;

  constructor(a: EventsRollupsCheck, b: RollupsLinesCheck, c: InvoicesLedgerCheck, d: CompletenessCheck, e: DeferredRevenueCheck, f: FluxCheck) {
    this.byKey = new Map<CheckKey, ReconciliationCheck>([a, b, c, d, e, f].map((x) => [x.key, x]));
  }

  get(key: CheckKey): ReconciliationCheck {
    const c = this.byKey.get(key);
    if (!c) throw new Error(`unknown check ${key}`);
    return c;
  }

  keys(): CheckKey[] {
    return [...CHECK_KEYS];
  }
}
