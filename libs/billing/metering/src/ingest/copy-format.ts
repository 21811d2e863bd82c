/**
 * Text encodings PostgreSQL reads fastest: COPY's text format (for the event rows) and array
 * literals (for one parameter holding 10,000 values). Pure. Validation has already refused NUL
 * characters and lone surrogates, which neither format could carry.
 */

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIAL_ALL = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value as one field of COPY's text format: backslash, tab, newline and CR escaped. */
export function copyField(s: string): string {
  // Most ids and names have nothing to escape; the test is cheaper than an allocation.
  return COPY_SPECIAL.test(s) ? s.replace(COPY_SPECIAL_ALL, (c) => COPY_ESCAPES[c]) : s;
}

/**
 * A JSON text as a COPY field. JSON.stringify never emits a raw tab, newline or CR (it escapes them
 * inside strings), so only its backslashes need doubling.
 */
export function copyJsonField(json: string): string {
  return json.includes('\\') ? json.replace(/\\/g, '\\\\') : json;
}

const ARRAY_SPECIAL = /["\\]/;
const ARRAY_SPECIAL_ALL = /["\\]/g;

/** Rows encoded for COPY, with where each line ends, so some lines can be left out without re-encoding. */
export interface CopyLines {
  buffer: Buffer;
  /** Byte offset just past line i's newline. */
  ends: Uint32Array;
}

/**
 * Encodes lines (each ending in a newline) into one buffer. Encoded ahead of the transaction: the
 * event loop is shared by every batch in flight, and work done while holding a transaction open
 * keeps its connection idle and its locks held.
 */
export function encodeLines(count: number, line: (i: number) => string): CopyLines {
  let buffer = Buffer.allocUnsafe(Math.max(4096, count * 256));
  const ends = new Uint32Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const text = line(i);
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    if (at + text.length * 3 > buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(buffer.length * 2, at + text.length * 3));
      buffer.copy(grown, 0, 0, at);
      buffer = grown;
    }
    at += buffer.write(text, at, 'utf8');
    ends[i] = at;
  }
  return { buffer: buffer.subarray(0, at), ends };
}

/** The encoded lines without those whose index is flagged in `skip`. */
export function withoutLines(lines: CopyLines, skip: Uint8Array): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  let runStart = 0;
  for (let i = 0; i < lines.ends.length; i++) {
    if (skip[i] === 1) {
      if (start > runStart) parts.push(lines.buffer.subarray(runStart, start));
      runStart = lines.ends[i];
    }
    start = lines.ends[i];
  }
  if (start > runStart) parts.push(lines.buffer.subarray(runStart, start));
  return Buffer.concat(parts);
}

/**
 * `{"a","b"}`: a text[] literal with every element quoted (so commas, braces, spaces and the word
 * NULL stay plain text). Hand-built because node-postgres' generic array serialiser costs several
 * times more for 10,000 elements.
 */
export function textArrayLiteral(values: readonly string[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    out += `${i === 0 ? '' : ','}"${ARRAY_SPECIAL.test(v) ? v.replace(ARRAY_SPECIAL_ALL, '\\$&') : v}"`;
  }
  return `${out}}`;
}
