import { RatingError } from './errors';
import { finishLine, RatedLine, totals } from './lines';
import { StepLog } from './steps';
import { currencyOf } from './util';

function line(key: string, amountExact: string, currency = 'USD'): RatedLine {
  const log = new StepLog();
  const v = log.add('input', { value: amountExact }, 'test', 'amount_exact');
  return finishLine(log, v, currencyOf(currency), {
    line_key: key,
    type: 'adjustment',
    period_start: '2024-01-01T00:00:00.000Z',
    period_end: '2024-02-01T00:00:00.000Z',
    quantity: '1',
    description: key,
  });
}

describe('lines and totals', () => {
  it('each line is rounded once, half-up (ties away from zero), to the currency minor unit', () => {
    expect(line('a', '16.335').amount).toBe('16.34');
    expect(line('b', '-16.335').amount).toBe('-16.34');
    expect(line('c', '16.3349999').amount).toBe('16.33');
    expect(line('d', '1.5', 'JPY').amount).toBe('2');
    expect(line('e', '1.2345', 'KWD').amount).toBe('1.235');
  });

  it('subtotal = Σ rounded lines (not the rounded exact sum); tax rounds once on the subtotal', () => {
    // three lines of 0.005 each: Σ rounded = 0.03; rounding the exact sum would give 0.02
    const ls = [line('a', '0.005'), line('b', '0.005'), line('c', '0.005')];
    const t = totals(ls, 'USD', '0.2');
    expect(t.subtotal).toBe('0.03');
    expect(t.tax).toMatchObject({ amount_exact: '0.006', amount: '0.01' });
    expect(t.total).toBe('0.04');
    expect(totals(ls, 'USD').tax).toBeNull();
    expect(totals([], 'USD')).toEqual({ subtotal: '0.00', tax: null, total: '0.00' });
  });

  it('refuses duplicate line keys, mixed currencies and tax rates above 1', () => {
    expect(() => totals([line('a', '1'), line('a', '2')], 'USD')).toThrow(RatingError);
    expect(() => totals([line('a', '1', 'EUR')], 'USD')).toThrow(RatingError);
    expect(() => totals([line('a', '1')], 'USD', '20')).toThrow(/fraction/);
    expect(() => totals([line('a', '1')], 'USD', '-0.1')).toThrow(RatingError);
  });
});
