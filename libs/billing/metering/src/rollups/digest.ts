import { createHash } from 'node:crypto';

/**
 * The digest of a set of event ids, order-independent: the XOR of the first 64 bits of md5(event_id)
 * read as a signed bigint. This is the TypeScript twin of the rollup SQL,
 * `bit_xor(('x' || md5(event_id))::bit(64)::bigint)` (the cast keeps the first 64 bits), so a
 * rollup can be checked from event ids alone. The empty set digests to "0".
 */
export function eventDigest(eventId: string): bigint {
  const hex = createHash('md5').update(eventId, 'utf8').digest('hex').slice(0, 16);
  return BigInt.asIntN(64, BigInt(`0x${hex}`));
}

export function digestOf(eventIds: Iterable<string>): string {
  let acc = 0n;
  for (const id of eventIds) acc ^= eventDigest(id);
  return BigInt.asIntN(64, acc).toString();
}

/**
 * SQL expression of one event's digest term (the column must be named `event_id`). usage_events
 * stores it as its generated column `event_digest` (migration 20261124050000), which the rollup
 * statements read instead of hashing every event again.
 */
export const EVENT_DIGEST_SQL = `('x' || md5(event_id))::bit(64)::bigint`;
