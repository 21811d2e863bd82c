import { openingIssueDate, periodIssueDate, transitionIssueDate } from './accounting-dates';

describe('accounting dates', () => {
  it('dates a period invoice on the last day of its period', () => {
    expect(periodIssueDate('2026-11-01T00:00:00.000Z')).toBe('2026-10-31');
    expect(periodIssueDate(new Date('2026-11-15T00:00:00.000Z'))).toBe('2026-11-14');
    // A period ending during a day ends on that day.
    expect(periodIssueDate('2026-11-15T10:30:00.000Z')).toBe('2026-11-15');
    expect(periodIssueDate('2027-01-01T00:00:00.000Z')).toBe('2026-12-31');
  });

  it('dates opening and transition invoices on the UTC day of their instant', () => {
    expect(openingIssueDate('2026-10-17T23:59:59.999Z')).toBe('2026-10-17');
    expect(transitionIssueDate(new Date('2026-12-03T00:00:00.000Z'))).toBe('2026-12-03');
  });

  it('puts a period invoice in the month its period ends in: (month start, month end]', () => {
    for (let day = 1; day <= 31; day++) {
      const end = new Date(Date.UTC(2026, 9, day, 0, 0, 0));
      const month = periodIssueDate(end).slice(0, 7);
      expect(month).toBe(day === 1 ? '2026-09' : '2026-10');
    }
  });
});
