import fc from 'fast-check';
import { copyField, copyJsonField, encodeLines, textArrayLiteral, withoutLines } from './copy-format';
import { customerSpans, subMillisecond } from './customer-spans';
import { InFlightKeys } from './in-flight-keys';
import { monthIndexOf, MonthSet } from './partitions';

/** COPY text format, read back the way PostgreSQL reads a field. */
function unescapeCopy(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => ({ t: '\t', n: '\n', r: '\r' })[c] ?? c);
}

describe('COPY text encoding', () => {
  it('escapes exactly backslash, tab, newline and CR, and round-trips any string', () => {
    expect(copyField('plain-id')).toBe('plain-id');
    expect(copyField('a\tb\nc\rd\\e')).toBe('a\\tb\\nc\\rd\\\\e');
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const field = copyField(s);
        expect(field).not.toMatch(/[\t\n\r]/);
        expect(unescapeCopy(field)).toBe(s);
      }),
    );
  });

  it('doubles only the backslashes of JSON text (JSON.stringify never emits raw tab or newline)', () => {
    const json = JSON.stringify({ path: 'C:\\tmp', quote: '"', tab: '\t' });
    expect(copyJsonField(json)).not.toMatch(/[\t\n\r]/);
    expect(JSON.parse(unescapeCopy(copyJsonField(json)))).toEqual({ path: 'C:\\tmp', quote: '"', tab: '\t' });
  });

  it('encodes lines with their end offsets (UTF-8) and leaves flagged lines out', () => {
    const lines = ['a\n', 'ünïcødé 🎉\n', 'c\n', 'd\n'];
    const encoded = encodeLines(lines.length, (i) => lines[i]);
    expect(encoded.buffer.toString('utf8')).toBe(lines.join(''));
    expect(Array.from(encoded.ends)).toEqual([2, 2 + Buffer.byteLength(lines[1]), 2 + Buffer.byteLength(lines[1]) + 2, encoded.buffer.length]);
    expect(withoutLines(encoded, Uint8Array.from([0, 1, 0, 1])).toString('utf8')).toBe('a\nc\n');
    expect(withoutLines(encoded, Uint8Array.from([1, 0, 0, 0])).toString('utf8')).toBe(lines.slice(1).join(''));
    expect(withoutLines(encoded, Uint8Array.from([1, 1, 1, 1])).length).toBe(0);
  });

  it('grows its buffer for long lines', () => {
    const long = `${'x'.repeat(100_000)}\n`;
    const encoded = encodeLines(3, () => long);
    expect(encoded.buffer.length).toBe(3 * long.length);
  });
});

describe('textArrayLiteral', () => {
  it('quotes every element and escapes quotes and backslashes', () => {
    expect(textArrayLiteral([])).toBe('{}');
    expect(textArrayLiteral(['a', 'NULL', 'x,y', '{z}', ' sp ', 'q"b\\'])).toBe('{"a","NULL","x,y","{z}"," sp ","q\\"b\\\\"}');
  });
});

describe('customerSpans', () => {
  it('keeps the earliest and latest timestamp string per customer, sub-millisecond digits included', () => {
    expect(subMillisecond('2026-11-01T00:00:00Z')).toBe(0);
    expect(subMillisecond('2026-11-01T00:00:00.1234+01:00')).toBe(400_000);
    expect(subMillisecond('2026-11-01T00:00:00.123456789Z')).toBe(456_789);
    const ms = Date.UTC(2026, 10, 1);
    const spans = customerSpans([
      { customerId: 'a', ms, timestamp: '2026-11-01T00:00:00.0005Z' },
      { customerId: 'b', ms: ms + 5, timestamp: '2026-11-01T01:00:00.005+01:00' },
      { customerId: 'a', ms, timestamp: '2026-11-01T00:00:00.0001Z' },
      { customerId: 'a', ms, timestamp: '2026-11-01T00:00:00.0009Z' },
      { customerId: 'a', ms: ms - 1000, timestamp: '2026-10-31T23:59:59Z' },
    ]);
    expect(spans).toEqual({
      customerIds: ['a', 'b'],
      lo: ['2026-10-31T23:59:59Z', '2026-11-01T01:00:00.005+01:00'],
      hi: ['2026-11-01T00:00:00.0009Z', '2026-11-01T01:00:00.005+01:00'],
    });
  });
});

describe('InFlightKeys', () => {
  it('gives an id to the first batch that takes it, reports repeats and ids held by another batch, and frees them on release', () => {
    const keys = new InFlightKeys();
    const a = keys.begin('org');
    const b = keys.begin('org');
    const other = keys.begin('other-org');
    expect([a.take('x'), a.take('y'), a.take('x')]).toEqual(['claimed', 'claimed', 'repeat']);
    expect([b.take('x'), b.take('z'), other.take('x')]).toEqual(['held', 'claimed', 'claimed']);
    expect(keys.size('org')).toBe(3);
    a.release();
    a.release();
    expect(keys.size('org')).toBe(1);
    expect(keys.begin('org').take('x')).toBe('claimed');
    b.release();
    other.release();
    expect(keys.size('other-org')).toBe(0);
  });
});

describe('MonthSet', () => {
  it('collects the month index of every instant, across month and year ends', () => {
    const months = new MonthSet();
    const instants = [Date.UTC(2026, 10, 30, 23, 59, 59, 999), Date.UTC(2026, 10, 1), Date.UTC(2026, 11, 1), Date.UTC(2027, 0, 1), Date.UTC(2026, 10, 15), Date.UTC(2019, 5, 15)];
    for (const ms of instants) months.add(ms);
    expect([...months.indexes].sort()).toEqual([...new Set(instants.map(monthIndexOf))].sort());
  });
});
