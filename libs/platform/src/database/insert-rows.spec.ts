import { rowDocuments } from './insert-rows';

describe('rowDocuments', () => {
  const columns = (...props: string[]) => new Map(props.map((p) => [p, p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)]));

  it('puts each value under its column, instants as ISO text, leaving out what a row lacks', () => {
    const at = new Date('2026-11-24T09:00:00.123Z');
    expect(rowDocuments('Spec1', columns('id', 'createdAt', 'data'), [{ id: 'a', createdAt: at, data: { when: at, n: '1.50' } }, { id: 'b' }])).toEqual([
      { id: 'a', created_at: '2026-11-24T09:00:00.123Z', data: { when: at, n: '1.50' } },
      { id: 'b' },
    ]);
    expect(JSON.stringify(rowDocuments('Spec1', columns('id', 'createdAt', 'data'), [{ id: 'b' }]))).toBe('[{"id":"b"}]');
  });

  it('one entity with different property lists: each list gets its own columns', () => {
    expect(rowDocuments('Spec2', columns('id'), [{ id: 'a', extra: 'not a listed property' }])).toEqual([{ id: 'a' }]);
    expect(rowDocuments('Spec2', columns('id', 'resourceId'), [{ id: 'b', resourceId: 'r' }])).toEqual([{ id: 'b', resource_id: 'r' }]);
    expect(rowDocuments('Spec2', columns('resourceId', 'id'), [{ id: 'c', resourceId: 's' }])).toEqual([{ id: 'c', resource_id: 's' }]);
  });

  it('names that are not identifiers are quoted, never run', () => {
    const odd = new Map([["it's \"odd\" }); throw 1; ({", 'odd"col']]);
    expect(rowDocuments('Spec3', odd, [{ ["it's \"odd\" }); throw 1; ({"]: 7 }])).toEqual([{ 'odd"col': 7 }]);
  });
});
