import { deepFreeze, Lru, periodTermsKey } from './allowance-terms';

describe('Lru', () => {
  it('forgets the least recently used entry first', () => {
    const m = new Lru<number>(2);
    m.set('a', 1);
    m.set('b', 2);
    expect(m.get('a')).toBe(1);
    m.set('c', 3);
    expect([m.get('a'), m.get('b'), m.get('c'), m.size]).toEqual([1, undefined, 3, 2]);
  });
});

describe('deepFreeze', () => {
  it('freezes nested documents, so a shared remembered value cannot be changed in place', () => {
    const doc = deepFreeze({ products: [{ allowance: '10' }] });
    expect(() => {
      (doc.products[0] as { allowance: string }).allowance = '20';
    }).toThrow(TypeError);
    expect(doc.products[0].allowance).toBe('10');
  });
});

describe('periodTermsKey', () => {
  it('names the subscription, both period bounds and the rows digest', () => {
    const k = (end: string, digest: string) => periodTermsKey('s', new Date('2026-11-01T00:00:00Z'), new Date(end), digest);
    expect(new Set([k('2026-12-01T00:00:00Z', 'x'), k('2026-11-20T00:00:00Z', 'x'), k('2026-12-01T00:00:00Z', 'y')]).size).toBe(3);
  });
});
