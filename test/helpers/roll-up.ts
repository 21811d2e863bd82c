import type { EntityManager } from '@mikro-orm/postgresql';
import type { ProcessDirtyResult, RollupsService } from '@closebook/metering';

/**
 * `processDirty` for an organization until nothing of it is left or 30 s have passed: pairs another
 * worker holds are skipped as busy by one call, so the tests call again until the holder is done.
 * Returns the sum of what was processed and the last call's busy and remaining. Without an
 * organization (every organization of the shared test database, which other suites keep marking)
 * it is one call.
 */
export async function rollUpUntilDone(rollups: RollupsService, em: () => EntityManager, organizationId?: string): Promise<ProcessDirtyResult> {
  const deadline = Date.now() + 30_000;
  let processed = 0;
  for (;;) {
    const res = await rollups.processDirty(em(), { organizationId, budgetMs: 30_000 });
    processed += res.processed;
    if (!organizationId || (res.busy === 0 && !res.remaining) || Date.now() > deadline) return { ...res, processed };
    await new Promise((r) => setTimeout(r, 50));
  }
}
