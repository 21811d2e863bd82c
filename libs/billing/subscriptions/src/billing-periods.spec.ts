import { periodHorizon, planPeriods, serviceEndBoundary, type PeriodSubject } from './billing-periods.service';

const d = (s: string) => new Date(s);
const sub = (over: Partial<PeriodSubject> = {}): PeriodSubject => ({
  id: 's',
  organizationId: 'o',
  startedAt: d('2026-03-15T10:30:00Z'),
  endsAt: null,
  billingAnchor: 1,
  ...over,
});
const bounds = (ps: { start: Date; end: Date; seq: number }[]) => ps.map((p) => `${p.seq} ${p.start.toISOString().slice(0, 10)}..${p.end.toISOString().slice(0, 10)}`);

describe('planPeriods', () => {
  it('starts with the prorated first period and stops at the period containing `until`', () => {
    expect(bounds(planPeriods(sub(), null, d('2026-05-01T00:00:00Z')))).toEqual(['1 2026-03-15..2026-04-01', '2 2026-04-01..2026-05-01', '3 2026-05-01..2026-06-01']);
    expect(bounds(planPeriods(sub(), null, d('2026-04-30T23:59:59Z')))).toEqual(['1 2026-03-15..2026-04-01', '2 2026-04-01..2026-05-01']);
  });

  it('continues after the last generated period', () => {
    const last = { start: d('2026-04-01T00:00:00Z'), end: d('2026-05-01T00:00:00Z'), seq: 2 };
    expect(bounds(planPeriods(sub(), last, d('2026-06-15T00:00:00Z')))).toEqual(['3 2026-05-01..2026-06-01', '4 2026-06-01..2026-07-01']);
    expect(planPeriods(sub(), last, d('2026-04-20T00:00:00Z'))).toEqual([]);
  });

  it('clamps anchor 31 to short months', () => {
    expect(bounds(planPeriods(sub({ startedAt: d('2026-02-10T00:00:00Z'), billingAnchor: 31 }), null, d('2026-04-01T00:00:00Z')))).toEqual([
      '1 2026-02-10..2026-02-28',
      '2 2026-02-28..2026-03-31',
      '3 2026-03-31..2026-04-30',
    ]);
  });

  it('clips the last period at the end of service (covering the day service ends on) and generates nothing after it', () => {
    const ended = sub({ endsAt: d('2026-05-10T12:00:00Z') });
    const ps = planPeriods(ended, null, d('2027-01-01T00:00:00Z'));
    expect(bounds(ps)).toEqual(['1 2026-03-15..2026-04-01', '2 2026-04-01..2026-05-01', '3 2026-05-01..2026-05-11']);
    expect(planPeriods(ended, ps[2], d('2027-01-01T00:00:00Z'))).toEqual([]);
    expect(serviceEndBoundary(d('2026-05-10T00:00:00Z')).toISOString()).toBe('2026-05-10T00:00:00.000Z');
  });

  it('keeps periods through the one after the period containing now (or the start, when it is in the future)', () => {
    expect(periodHorizon(sub(), d('2026-11-23T18:00:00Z')).toISOString()).toBe('2026-12-01T00:00:00.000Z');
    expect(periodHorizon(sub({ startedAt: d('2027-02-10T00:00:00Z'), billingAnchor: 5 }), d('2026-11-23T18:00:00Z')).toISOString()).toBe('2027-03-05T00:00:00.000Z');
  });
});
