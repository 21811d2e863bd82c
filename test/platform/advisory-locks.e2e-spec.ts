// lockInOrder: many advisory locks in one order for every taker, held until the transaction ends.
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { lockInOrder } from '@closebook/platform';
import { startApi, type TestApi } from '../helpers/api';

describe('lockInOrder', () => {
  let api: TestApi;
  const em = () => api.orm.em.fork() as EntityManager;
  beforeAll(async () => {
    api = await startApi();
  });
  afterAll(() => api.close());

  it('two transactions asking for the same keys in opposite orders both finish, one after the other', async () => {
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()].map((id) => `test:${id}`);
    const order: string[] = [];
    const hold = (name: string, keys: string[]) =>
      em().transactional(async (tx) => {
        await lockInOrder(tx, keys);
        order.push(`${name} in`);
        await new Promise((r) => setTimeout(r, 150));
        order.push(`${name} out`);
      });
    await Promise.all([hold('first', [a, b, c, a]), hold('second', [c, b, a])]);
    // Never both inside at once (and no deadlock): one enters and leaves, then the other.
    const [x, y] = order[0].startsWith('first') ? ['first', 'second'] : ['second', 'first'];
    expect(order).toEqual([`${x} in`, `${x} out`, `${y} in`, `${y} out`]);
  });

  it('the locks end with the transaction; no keys is nothing to do', async () => {
    const key = `test:${randomUUID()}`;
    await em().transactional((tx) => lockInOrder(tx, [key]));
    const [row] = await em().transactional((tx) => tx.execute<{ ok: boolean }[]>('select pg_try_advisory_xact_lock(hashtextextended(?, 0)) as ok', [key]));
    expect(row.ok).toBe(true);
    await expect(em().transactional((tx) => lockInOrder(tx, []))).resolves.toBeUndefined();
  });
});
