import type { EntityManager } from '@mikro-orm/postgresql';
import { isUuid } from '@closebook/platform';

/** The organization a CLI command works on: `--org`, or the only organization when there is exactly one. */
export async function resolveOrganization(em: EntityManager, org: string | undefined): Promise<string> {
  if (org) {
    if (!isUuid(org)) throw new Error('--org must be an organization id (a UUID)');
    const [row] = await em.execute<{ id: string }[]>('select id from organizations where id = ?', [org]);
    if (!row) throw new Error(`organization ${org} was not found`);
    return row.id;
  }
  const rows = await em.execute<{ id: string }[]>('select id from organizations order by created_at limit 2');
  if (rows.length !== 1) throw new Error(rows.length ? 'several organizations exist: pass --org <id>' : 'no organization exists');
  return rows[0].id;
}
