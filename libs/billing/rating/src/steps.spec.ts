import { evaluateStep, replayLine, replaySteps, Step, StepLog, STEP_OPS, StepOp } from './steps';

const ev = (op: StepOp, inputs: Record<string, string | null>) => evaluateStep(op, inputs).toFixed();

describe('step ops', () => {
  it('every op evaluates as documented', () => {
    expect(ev('input', { value: '12.50' })).toBe('12.5');
    expect(ev('sum', { a: '1', b: '2.5', c: '-0.5' })).toBe('3');
    expect(ev('sum', {})).toBe('0');
    expect(ev('product', { quantity: '15000', unit_amount: '0.005' })).toBe('75');
    expect(ev('difference', { minuend: '25000', subtrahend: '10000' })).toBe('15000');
    expect(ev('min', { a: '3', b: '2' })).toBe('2');
    expect(ev('max', { a: '3', b: '2' })).toBe('3');
    expect(ev('divide', { dividend: '400000', divisor: '30' }).slice(0, 20)).toBe('13333.33333333333333');
    expect(ev('prorate', { amount: '49', days: '15', days_in_period: '30' })).toBe('24.5');
    expect(ev('ceil_div', { quantity: '1001', package_size: '1000' })).toBe('2');
    expect(ev('round', { amount: '16.335', minor_units: '2' })).toBe('16.34');
    expect(ev('round', { amount: '-16.335', minor_units: '2' })).toBe('-16.34');
    expect(ev('round_up', { value: '1.0000000000001', scale: '12' })).toBe('1.000000000001');
    expect(ev('tier_quantity', { quantity: '25000', from: '10000', to: '50000' })).toBe('15000');
    expect(ev('tier_quantity', { quantity: '5000', from: '10000', to: '50000' })).toBe('0');
    expect(ev('tier_quantity', { quantity: '90000', from: '50000', to: null })).toBe('40000');
    expect(ev('tier_amount', { quantity: '2', unit_amount: '3', flat_amount: '1' })).toBe('7');
    expect(ev('tier_amount', { quantity: '0', unit_amount: '3', flat_amount: '1' })).toBe('0');
    expect(ev('if_positive', { quantity: '0', amount: '49' })).toBe('0');
    expect(ev('overage_mode', { quantity: '500', mode: 'block' })).toBe('0');
    expect(ev('overage_mode', { quantity: '500', mode: 'bill' })).toBe('500');
    expect(ev('negate', { value: '16.33' })).toBe('-16.33');
    expect(Object.keys(STEP_OPS).sort()).toEqual(
      ['input', 'sum', 'product', 'difference', 'min', 'max', 'divide', 'prorate', 'ceil_div', 'round', 'round_up', 'tier_quantity', 'tier_amount', 'if_positive', 'overage_mode', 'negate'].sort(),
    );
  });
});

describe('replay', () => {
  const build = () => {
    const log = new StepLog();
    const q = log.add('input', { value: '15000' }, 'billable', 'quantity');
    const a = log.add('product', { quantity: q, unit_amount: '0.005' }, '15,000 × $0.005', 'amount_exact');
    log.add('round', { amount: a, minor_units: '2' }, 'round', 'amount');
    return log.steps;
  };

  it('recomputes a chain and reports the rounded amount with its minor units', () => {
    const steps = build();
    expect(steps[1].refs).toEqual({ quantity: 'quantity' });
    expect(steps[2].result).toBe('75.00');
    expect(replayLine(steps)).toEqual({ ok: true, amount_exact: '75', amount: '75.00', mismatches: [] });
  });

  it('detects a wrong result, a broken reference, an unknown op and malformed steps without throwing', () => {
    const wrong = build();
    wrong[1].result = '76';
    expect(replaySteps(wrong).mismatches.map((m) => m.reason)).toEqual(['result differs from recomputation']);

    const relinked = build();
    relinked[2].inputs.amount = '76';
    relinked[2].result = '76.00';
    expect(replaySteps(relinked).mismatches.map((m) => m.reason)).toEqual(['input amount differs from step amount_exact']);

    const broken = build();
    broken[1].refs = { quantity: 'nope' };
    expect(replaySteps(broken).mismatches[0].reason).toBe('input quantity refers to unknown step nope');

    const unknown = [...build(), { op: 'teleport', inputs: {}, result: '0', note: '' } as unknown as Step];
    expect(replaySteps(unknown).ok).toBe(false);

    expect(replayLine([null as unknown as Step]).ok).toBe(false);
    expect(replayLine([]).mismatches.map((m) => m.reason)).toEqual(['no amount_exact step', 'no amount step']);
  });
});
