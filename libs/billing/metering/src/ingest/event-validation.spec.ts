import fc from 'fast-check';
import { ValidationError } from '@closebook/platform';
import { FUTURE_TOLERANCE_MS, isRejected, MAX_EVENTS_PER_BATCH, parseIngestBody, parseInstant, validateEvent } from './event-validation';

const NOW = Date.UTC(2026, 10, 23, 12, 0, 0);
const base = { event_id: 'e1', customer_id: 'acme', event_name: 'api.call', timestamp: '2026-11-23T11:00:00Z', properties: { gb: '1.5', ok: true, n: 3, none: null } };

describe('parseInstant', () => {
  it('reads strict ISO 8601 instants with a zone, to the millisecond', () => {
    expect(parseInstant('2026-11-23T10:00:00Z')).toBe(Date.UTC(2026, 10, 23, 10));
    expect(parseInstant('2026-11-23T10:00:00.123456Z')).toBe(Date.UTC(2026, 10, 23, 10, 0, 0, 123));
    expect(parseInstant('2026-11-23T12:00:00+02:00')).toBe(Date.UTC(2026, 10, 23, 10));
    expect(parseInstant('2026-11-23T07:30:00-02:30')).toBe(Date.UTC(2026, 10, 23, 10));
    expect(parseInstant('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
  });

  it('refuses impossible dates and incomplete forms (where Date.parse would guess)', () => {
    for (const s of ['2026-02-30T00:00:00Z', '2025-02-29T00:00:00Z', '2026-11-23T24:00:00Z', '2026-11-23T10:00Z', '2026-11-23T10:00:00', '2026-11-23', '2026-11-23 10:00:00Z', 'yesterday', '2026-13-01T00:00:00Z']) {
      expect([s, parseInstant(s)]).toEqual([s, NaN]);
    }
  });

  it('agrees with Date for every valid instant it prints', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }), (d) => {
        expect(parseInstant(d.toISOString())).toBe(d.getTime());
      }),
    );
  });
});

describe('validateEvent', () => {
  it('accepts a well-formed event and keeps the client timestamp', () => {
    const v = validateEvent(base, 3, NOW);
    expect(isRejected(v)).toBe(false);
    expect(v).toMatchObject({ index: 3, eventId: 'e1', customerExternalId: 'acme', eventName: 'api.call', timestamp: base.timestamp, properties: base.properties });
    expect(validateEvent({ ...base, properties: undefined }, 0, NOW)).toMatchObject({ properties: {} });
  });

  it.each([
    ['null', null, 'invalid_event'],
    ['an array', [], 'invalid_event'],
    ['an empty event_id', { ...base, event_id: '' }, 'invalid_event_id'],
    ['a 201-character event_id', { ...base, event_id: 'x'.repeat(201) }, 'event_id_too_long'],
    ['no customer_id', { ...base, customer_id: undefined }, 'missing_field'],
    ['an empty customer_id', { ...base, customer_id: '' }, 'invalid_customer_id'],
    ['a numeric event_name', { ...base, event_name: 5 }, 'invalid_event_name'],
    ['an epoch timestamp', { ...base, timestamp: 1700000000 }, 'invalid_timestamp'],
    ['a timestamp 5 min 1 s ahead', { ...base, timestamp: new Date(NOW + FUTURE_TOLERANCE_MS + 1000).toISOString() }, 'timestamp_in_future'],
    ['a timestamp in 1999', { ...base, timestamp: '1999-12-31T23:59:59Z' }, 'timestamp_too_old'],
    ['string properties', { ...base, properties: 'x' }, 'invalid_properties'],
    ['an array property', { ...base, properties: { a: [1] } }, 'invalid_property'],
    ['an object property', { ...base, properties: { a: { b: 1 } } }, 'invalid_property'],
    ['a NUL in a property', { ...base, properties: { a: 'x\u0000' } }, 'invalid_property'],
    ['101 properties', { ...base, properties: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, i])) }, 'too_many_properties'],
    ['an unknown field', { ...base, foo: 1 }, 'unknown_field'],
  ])('rejects %s with its code', (_label, item, code) => {
    const v = validateEvent(item, 7, NOW);
    expect(v).toMatchObject({ index: 7, code, reason: expect.any(String) });
  });

  it('accepts a timestamp up to 5 minutes ahead', () => {
    expect(isRejected(validateEvent({ ...base, timestamp: new Date(NOW + FUTURE_TOLERANCE_MS).toISOString() }, 0, NOW))).toBe(false);
  });
});

describe('parseIngestBody', () => {
  it('refuses anything but {events: [...]} of at most 10,000 items', () => {
    for (const body of [null, [], 'x', {}, { events: {} }, { events: [], x: 1 }, { events: new Array(MAX_EVENTS_PER_BATCH + 1).fill(base) }]) {
      expect(() => parseIngestBody(body)).toThrow(ValidationError);
    }
    expect(parseIngestBody({ events: [base] }).events).toHaveLength(1);
  });
});
