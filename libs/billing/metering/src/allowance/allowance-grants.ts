import type { EntityManager } from '@mikro-orm/postgresql';
import type { AllowanceGrant } from '@closebook/rating';
import type { PeriodRow, SubscriptionRow } from '../catalog/billing-sources';

/**
 * Where carried-in (rollover) allowance grants come from. The default reads the allowance ledger
 * the invoicing module keeps (`allowance_grants` with `allowance_drawdowns`), when those tables
 * exist: rollover grants live in the period, with `drawn_before` = what earlier periods drew.
 * Without them nothing is carried in (rolled_over = 0).
 */
export interface AllowanceGrantsSource {
  grants(em: EntityManager, sub: SubscriptionRow, period: PeriodRow): Promise<AllowanceGrant[]>;
  /**
   * The grants of many pairs at once, in their order: what `grants` gives for each, read in a
   * constant number of statements (the rollup worker's pages). Optional: without it the engine asks
   * `grants` pair by pair.
   */
  grantsMany?(em: EntityManager, pairs: readonly { sub: SubscriptionRow; period: PeriodRow }[]): Promise<AllowanceGrant[][]>;
}
export const ALLOWANCE_GRANTS_SOURCE = Symbol('ALLOWANCE_GRANTS_SOURCE');

type Tables = { g: string | null; d: string | null };

export class TableAllowanceGrantsSource implements AllowanceGrantsSource {
  /** Tables, once seen, stay (a migration never drops them under a running process). */
  private seen: Tables | null = null;

  async grants(em: EntityManager, sub: SubscriptionRow, period: PeriodRow): Promise<AllowanceGrant[]> {
    return (await this.grantsMany(em, [{ sub, period }]))[0];
  }

  /** One statement for any number of pairs (after the first call's look for the ledger tables). */
  async grantsMany(em: EntityManager, pairs: readonly { sub: SubscriptionRow; period: PeriodRow }[]): Promise<AllowanceGrant[][]> {
    if (!pairs.length) return [];
    const reg = await this.tables(em);
    if (!reg.g) return pairs.map(() => []);
    const rows = await em.execute<{ grants: GrantRow[] }[]>(
      `select ${grantsSelect(!!reg.d)} as grants
       from unnest(?::uuid[], ?::uuid[], ?::timestamptz[]) with ordinality as s(organization_id, id, period_start, i)
       cross join lateral (select s.period_start) p
       order by s.i`,
      [
        `{${pairs.map((x) => x.sub.organizationId).join(',')}}`,
        `{${pairs.map((x) => x.sub.id).join(',')}}`,
        `{${pairs.map((x) => `"${x.period.start.toISOString()}"`).join(',')}}`,
      ],
    );
    return rows.map((r) => toGrants(r.grants));
  }

  /**
   * The grants as one SQL expression (a jsonb array; see `toGrants`) over `s` (the subscription:
   * id, organization_id) and `p` (the period: period_start) in scope, for folding into a bigger
   * read — or null until both ledger tables have been seen (then `grants` is the way).
   */
  foldable(): string | null {
    return this.seen ? grantsSelect(!!this.seen.d) : null;
  }

  private async tables(em: EntityManager): Promise<Tables> {
    if (this.seen) return this.seen;
    const [reg] = await em.execute<Tables[]>(`select to_regclass('allowance_grants')::text as g, to_regclass('allowance_drawdowns')::text as d`);
    if (reg.g && reg.d) this.seen = reg;
    return reg;
  }
}

export type GrantRow = { grant: AllowanceGrant; drawn_before: string };

export const toGrants = (rows: GrantRow[] | null): AllowanceGrant[] => (rows ?? []).map((r) => ({ ...r.grant, drawn_before: r.drawn_before }));

/** Rollover grants live in the period `p` of subscription `s`, ordered by grant id, with what earlier periods drew. */
function grantsSelect(drawdowns: boolean): string {
  const drawn = drawdowns
    ? `(select coalesce(sum(d.drawn), 0) from allowance_drawdowns d
         where d.subscription_id = g.subscription_id and d.grant_id = g.grant_id and d.period_start < p.period_start)::text`
    : `'0'`;
  return `(select coalesce(jsonb_agg(jsonb_build_object('grant', g."grant", 'drawn_before', ${drawn}) order by g."grant"->>'grant_id'), '[]'::jsonb)
     from allowance_grants g
     where g.organization_id = s.organization_id and g.subscription_id = s.id and g."grant"->>'kind' = 'rollover'
       and (g."grant"->>'granted_in_period')::timestamptz <= p.period_start
       and (g."grant"->>'expires_after_period')::timestamptz >= p.period_start)`;
}
