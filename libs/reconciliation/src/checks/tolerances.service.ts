import { Injectable } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditService, ValidationError } from '@closebook/platform';
import { dec } from '@closebook/money';
import { ReconciliationTolerance } from '../runs/entities/reconciliation-tolerance.entity';
import { CHECK_KEYS, DEFAULT_TOLERANCES, isCheckKey, toleranceIssue, type CheckKey, type ToleranceInForce, type ToleranceMode } from './tolerance';

export interface ToleranceView extends ToleranceInForce {
  check: CheckKey;
  updated_at: Date | null;
}

export interface ToleranceInput {
  check: string;
  absolute?: string | null;
  percent?: string | null;
  mode?: ToleranceMode;
}

/** Per-organization tolerances per check (absent → DEFAULT_TOLERANCES). */
@Injectable()
export class TolerancesService {
  constructor(private readonly audit: AuditService) {}

  async all(em: EntityManager, organizationId: string): Promise<ToleranceView[]> {
    const rows = await em.find(ReconciliationTolerance, { organizationId });
    const by = new Map(rows.map((r) => [r.checkKey, r]));
    return CHECK_KEYS.map((check) => view(check, by.get(check)));
  }

  async inForce(em: EntityManager, organizationId: string): Promise<Record<CheckKey, ToleranceInForce>> {
    const out = {} as Record<CheckKey, ToleranceInForce>;
    for (const v of await this.all(em, organizationId)) out[v.check] = { absolute: v.absolute, percent: v.percent, mode: v.mode, source: v.source };
    return out;
  }

  /** Sets a check's tolerance (omitted bounds become null: not configured). Audited. */
  async set(em: EntityManager, organizationId: string, input: ToleranceInput): Promise<ToleranceView> {
    if (!isCheckKey(input.check)) throw new ValidationError('invalid_value', `check must be one of ${CHECK_KEYS.join(', ')}`, 'check');
    const issue = toleranceIssue(input);
    if (issue) throw new ValidationError('invalid_value', issue.message, issue.field);
    const check = input.check;
    return em.transactional(async (tx) => {
      await tx.execute(
        `insert into reconciliation_tolerances (id, created_at, organization_id, check_key, absolute, percent, mode, updated_at)
         values (gen_random_uuid(), now(), ?, ?, ?, ?, ?, now())
         on conflict (organization_id, check_key) do update
           set absolute = excluded.absolute, percent = excluded.percent, mode = excluded.mode, updated_at = now()`,
        [organizationId, check, norm(input.absolute), norm(input.percent), input.mode ?? 'both'],
      );
      const row = await tx.findOneOrFail(ReconciliationTolerance, { organizationId, checkKey: check }, { refresh: true });
      this.audit.record(tx, {
        organizationId,
        action: 'reconciliation.tolerance.set',
        resourceType: 'reconciliation_tolerance',
        resourceId: row.id,
        data: { check, absolute: row.absolute ?? null, percent: row.percent ?? null, mode: row.mode },
      });
      return view(check, row);
    });
  }
}

const norm = (s: string | null | undefined) => (s == null ? null : dec(s).toFixed());

function view(check: CheckKey, row?: ReconciliationTolerance): ToleranceView {
  if (!row) return { check, ...DEFAULT_TOLERANCES[check], source: 'default', updated_at: null };
  return {
    check,
    absolute: row.absolute == null ? null : dec(row.absolute).toFixed(),
    percent: row.percent == null ? null : dec(row.percent).toFixed(),
    mode: row.mode,
    source: 'configured',
    updated_at: row.updatedAt,
  };
}
