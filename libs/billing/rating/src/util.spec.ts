import fc from 'fast-check';
import { RatingError } from './errors';
import { iso, toMs } from './util';

/** toMs as it was before its memo and numeric bounds: the reference the fast path must equal. */
function reference(t: string): number | 'refused' {
  const ms = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(t) ? Date.parse(t) : NaN;
  if (!Number.isFinite(ms)) return 'refused';
  const year = new Date(ms).getUTCFullYear();
  return year < 1970 || year > 9999 ? 'refused' : ms;
}

const attempt = (t: string): number | 'refused' => {
  try {
    return toMs(t);
  } catch (e) {
    expect(e).toBeInstanceOf(RatingError);
    return 'refused';
  }
};

describe('instants', () => {
  it('accepts exactly the years 1970–9999, offsets included', () => {
    expect(toMs('1970-01-01T00:00:00Z')).toBe(0);
    expect(toMs('9999-12-31T23:59:59.999Z')).toBe(Date.UTC(10000, 0, 1) - 1);
    for (const t of ['1969-12-31T23:59:59.999Z', '1970-01-01T01:00:00+02:00', '9999-12-31T23:00:00-02:00', 'not a date', '2024-13-01T00:00:00Z']) {
      expect(() => toMs(t)).toThrow(RatingError);
      // Asked again (a refusal is never remembered as a value).
      expect(() => toMs(t)).toThrow(RatingError);
    }
  });

  it('gives what the plain parse gives, first and every later time (remembered), for any instant and offset', () => {
    const instants = fc
      .tuple(fc.integer({ min: Date.UTC(1960, 0, 1), max: Date.UTC(10010, 0, 1) }), fc.constantFrom('Z', '+02:00', '-05:30', '+14:00', ''))
      .map(([ms, zone]) => {
        const text = new Date(Math.max(ms, Date.UTC(0, 0, 1))).toISOString();
        // Years past 9999 print as +010000-…: not an instant the pattern accepts, which the reference refuses too.
        return zone === 'Z' ? text : zone === '' ? text.slice(0, 10) : text.replace('Z', zone);
      });
    fc.assert(
      fc.property(fc.array(instants, { minLength: 1, maxLength: 20 }), (texts) => {
        for (const t of [...texts, ...texts]) expect(attempt(t)).toEqual(reference(t));
      }),
      { numRuns: 300 },
    );
  });

  it('prints an instant as toISOString does, remembered or not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Date.UTC(10000, 0, 1) - 1 }), (ms) => {
        expect(iso(ms)).toBe(new Date(ms).toISOString());
        expect(iso(ms)).toBe(new Date(ms).toISOString());
      }),
    );
    // More distinct instants than the memo holds: it starts over, and still answers right.
    for (let i = 0; i < 10_000; i++) expect(iso(i * 60_000)).toBe(new Date(i * 60_000).toISOString());
    expect(toMs(iso(123_456_789))).toBe(123_456_789);
  });
});
