/**
 * The event ids this process is writing right now, per organization. Only a hint for the order of a
 * batch's statements, never a guarantee (the unique key in PostgreSQL is): a batch first inserts the
 * keys nobody else here is writing — nothing to wait for — and only then the ones another batch has
 * in flight (typically duplicates of a batch still committing), where PostgreSQL makes it wait for
 * that batch's outcome. Without this, one such id made a whole batch wait holding its keys, and
 * concurrent batches queued behind each other.
 *
 * The same lookup also finds repeats inside the batch, so each id is hashed once per batch.
 */

/** What `BatchClaim.take` found: the id is now ours, we took it earlier in this batch, or another batch holds it. */
export type Take = 'claimed' | 'repeat' | 'held';

export class BatchClaim {
  private readonly owned: string[] = [];
  private released = false;

  constructor(private readonly ids: Map<string, BatchClaim>, private readonly onEmpty: () => void) {}

  take(eventId: string): Take {
    const holder = this.ids.get(eventId);
    if (holder === this) return 'repeat';
    if (holder !== undefined) return 'held';
    this.ids.set(eventId, this);
    this.owned.push(eventId);
    return 'claimed';
  }

  /** Gives the claimed ids back; call once the batch committed or failed. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const id of this.owned) this.ids.delete(id);
    if (this.ids.size === 0) this.onEmpty();
  }
}

export class InFlightKeys {
  private readonly byOrganization = new Map<string, Map<string, BatchClaim>>();

  /** A claim for one batch; `take` is synchronous, so two batches never both claim an id. */
  begin(organizationId: string): BatchClaim {
    let ids = this.byOrganization.get(organizationId);
    if (ids === undefined) {
      ids = new Map();
      this.byOrganization.set(organizationId, ids);
    }
    const held = ids;
    return new BatchClaim(held, () => {
      if (this.byOrganization.get(organizationId) === held) this.byOrganization.delete(organizationId);
    });
  }

  /** Ids currently claimed for an organization (for tests). */
  size(organizationId: string): number {
    return this.byOrganization.get(organizationId)?.size ?? 0;
  }
}
