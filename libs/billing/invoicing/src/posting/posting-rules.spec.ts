import fc from 'fast-check';
import { Money } from '@closebook/money';
import { ACCOUNTS, type PostingLine } from '@closebook/ledger';
import { LINE_TYPES, type LineType } from '@closebook/rating';
import { creditNotePosting, invoicePosting, paymentPosting, type PostableLine } from './posting-rules';

const CUSTOMER = '00000000-0000-4000-8000-000000000001';
const start = new Date('2026-10-01T00:00:00Z');
const end = new Date('2026-11-01T00:00:00Z');
const minor = (m: PostingLine['debit']) => (m == null ? 0n : typeof m === 'bigint' ? m : m.toMinorUnits());
const net = (lines: PostingLine[], account: string) => lines.filter((l) => l.account_code === account).reduce((s, l) => s + minor(l.debit) - minor(l.credit), 0n);
const line = (type: LineType, amount: string, meta: Record<string, unknown> = {}, id = `${type}-${amount}`): PostableLine => ({ id, type, amount, periodStart: start, periodEnd: end, meta });

describe('posting rules', () => {
  it('a monthly invoice: AR total, fees deferred by component, usage and services to revenue, credits to contra, tax payable', () => {
    const lines = [
      line('base_fee', '49.00', { component: 'base_fee:pro' }),
      line('seat', '30.00', { component: 'seat:seats' }),
      line('addon', '10.00', { component: 'addon:sso' }),
      line('usage_included', '0.00'),
      line('usage_overage', '12.34'),
      line('on_demand', '100.00'),
      line('proration_credit', '-5.00', { component: 'base_fee:pro' }),
      line('proration_charge', '7.50', { component: 'seat:seats' }),
      line('adjustment', '2.00'),
      line('credit', '-1.00'),
    ];
    // subtotal 204.84, tax 20% = 40.97 (rounded), total 245.81
    const p = invoicePosting({ customerId: CUSTOMER, currency: 'USD', total: '245.81', taxAmount: '40.97' }, lines);
    expect(net(p.lines, ACCOUNTS.ACCOUNTS_RECEIVABLE)).toBe(24581n);
    expect(net(p.lines, ACCOUNTS.DEFERRED_REVENUE)).toBe(-(4900n + 3000n + 1000n + 750n));
    expect(net(p.lines, ACCOUNTS.REVENUE_USAGE)).toBe(-(1234n + 200n));
    expect(net(p.lines, ACCOUNTS.REVENUE_SERVICES)).toBe(-10000n);
    expect(net(p.lines, ACCOUNTS.CONTRA_REVENUE_CREDITS)).toBe(600n);
    expect(net(p.lines, ACCOUNTS.TAX_PAYABLE)).toBe(-4097n);
    expect(p.lines.find((l) => l.account_code === ACCOUNTS.ACCOUNTS_RECEIVABLE)!.party_id).toBe(CUSTOMER);
    expect(p.deferrals.map((d) => [d.amount.format(), d.toAccount])).toEqual([
      ['49.00', ACCOUNTS.REVENUE_SUBSCRIPTION],
      ['30.00', ACCOUNTS.REVENUE_SEATS_ADDONS],
      ['10.00', ACCOUNTS.REVENUE_SEATS_ADDONS],
      ['7.50', ACCOUNTS.REVENUE_SEATS_ADDONS],
    ]);
  });

  it('refuses an invoice whose total is not its lines plus tax', () => {
    expect(() => invoicePosting({ customerId: CUSTOMER, currency: 'USD', total: '50.00', taxAmount: '0.00' }, [line('base_fee', '49.00')])).toThrow(/not the sum/);
  });

  it('a negative invoice (credits exceed charges) credits the receivable', () => {
    const p = invoicePosting({ customerId: CUSTOMER, currency: 'USD', total: '-20.00', taxAmount: '0.00' }, [line('base_fee', '10.00'), line('proration_credit', '-30.00')]);
    expect(net(p.lines, ACCOUNTS.ACCOUNTS_RECEIVABLE)).toBe(-2000n);
  });

  it('any invoice balances, AR equals its total, and deferrals sum to the fees billed in advance (property)', () => {
    const amount = fc.bigInt({ min: -1_000_000n, max: 1_000_000n });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...LINE_TYPES), amount), { maxLength: 30 }), fc.bigInt({ min: -100_000n, max: 100_000n }), (raw, taxMinor) => {
        const lines = raw.map(([type, a], i) => line(type, Money.fromMinorUnits(type === 'usage_included' ? 0n : a, 'USD').format(), {}, `l${i}`));
        const subtotal = raw.reduce((s, [type, a]) => s + (type === 'usage_included' ? 0n : a), 0n);
        const total = Money.fromMinorUnits(subtotal + taxMinor, 'USD').format();
        const p = invoicePosting({ customerId: CUSTOMER, currency: 'USD', total, taxAmount: Money.fromMinorUnits(taxMinor, 'USD').format() }, lines);
        const debits = p.lines.reduce((s, l) => s + minor(l.debit), 0n);
        const credits = p.lines.reduce((s, l) => s + minor(l.credit), 0n);
        expect(debits).toBe(credits);
        expect(net(p.lines, ACCOUNTS.ACCOUNTS_RECEIVABLE)).toBe(subtotal + taxMinor);
        for (const l of p.lines) expect(minor(l.debit) > 0n !== minor(l.credit) > 0n).toBe(true);
        const deferred = p.deferrals.reduce((s, d) => s + d.amount.toMinorUnits(), 0n);
        expect(-net(p.lines, ACCOUNTS.DEFERRED_REVENUE)).toBe(deferred);
        expect(p.deferrals.every((d) => d.amount.isPositive())).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  describe('credit notes', () => {
    const note = { customerId: CUSTOMER, currency: 'USD', subtotal: '10.00', taxAmount: '2.00', total: '12.00' };
    it('reduce the receivable while the invoice has that much due', () => {
      const lines = creditNotePosting(note, Money.of('100', 'USD'));
      expect(net(lines, ACCOUNTS.CONTRA_REVENUE_CREDITS)).toBe(1000n);
      expect(net(lines, ACCOUNTS.TAX_PAYABLE)).toBe(200n);
      expect(net(lines, ACCOUNTS.ACCOUNTS_RECEIVABLE)).toBe(-1200n);
      expect(net(lines, ACCOUNTS.CUSTOMER_CREDITS)).toBe(0n);
    });
    it('become a customer credit for what exceeds the amount due (a paid invoice: all of it)', () => {
      expect(net(creditNotePosting(note, Money.of('5', 'USD')), ACCOUNTS.CUSTOMER_CREDITS)).toBe(-700n);
      const paid = creditNotePosting(note, Money.zero('USD'));
      expect(net(paid, ACCOUNTS.ACCOUNTS_RECEIVABLE)).toBe(0n);
      expect(net(paid, ACCOUNTS.CUSTOMER_CREDITS)).toBe(-1200n);
      expect(paid.find((l) => l.account_code === ACCOUNTS.CUSTOMER_CREDITS)!.party_id).toBe(CUSTOMER);
    });
  });

  it('a payment debits cash and credits the customer receivable', () => {
    const lines = paymentPosting({ customerId: CUSTOMER, currency: 'JPY', amount: '1200' });
    expect(net(lines, ACCOUNTS.CASH)).toBe(1200n);
    expect(net(lines, ACCOUNTS.ACCOUNTS_RECEIVABLE)).toBe(-1200n);
  });
});
