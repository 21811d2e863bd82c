import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { QueueEvents, Worker, type Job } from 'bullmq';
import { Money } from '@closebook/money';
import { AppConfig, JobDispatcher, JobsService, redisConnection } from '@closebook/platform';
import {
  ACCOUNTS,
  LedgerPeriodsService,
  LedgerReportsService,
  LedgerService,
  RevenueRecognitionJobs,
  RevenueRecognitionService,
  recognitionJobId,
  periodsBetween,
  lastDay,
} from '@closebook/ledger';
import { startApi, type TestApi } from '../helpers/api';
import { closeMonth } from './ledger-fixtures';

describe('revenue recognition', () => {
  let api: TestApi;
  let ledger: LedgerService;
  let recognition: RevenueRecognitionService;
  let reports: LedgerReportsService;
  let periods: LedgerPeriodsService;
  const em = (): EntityManager => api.orm.em.fork() as EntityManager;

  beforeAll(async () => {
    api = await startApi();
    ledger = api.app.get(LedgerService);
    recognition = api.app.get(RevenueRecognitionService);
    reports = api.app.get(LedgerReportsService);
    periods = api.app.get(LedgerPeriodsService);
  });
  afterAll(() => api.close());

  /** What invoicing does when it finalizes an invoice billing a fee in advance: the entry and the schedule, in one transaction. */
  async function billInAdvance(org: string, customer: string, total: string, start: string, end: string, key = randomUUID()) {
    return em().transactional(async (tx) => {
      const amount = Money.of(total, 'USD');
      await ledger.post(tx, {
        organizationId: org,
        currency: 'USD',
        date: start,
        key: `invoice:${key}`,
        source: { type: 'invoice', id: key },
        description: 'Yearly plan fee',
        lines: [
          { account_code: ACCOUNTS.ACCOUNTS_RECEIVABLE, party_id: customer, debit: amount },
          { account_code: ACCOUNTS.DEFERRED_REVENUE, party_id: customer, credit: amount },
        ],
      });
      return recognition.createSchedule(tx, {
        organizationId: org,
        key: `invoice_line:${key}`,
        source: { type: 'invoice_line', id: key },
        total: amount,
        serviceStart: start,
        serviceEnd: end,
        toAccount: ACCOUNTS.REVENUE_SUBSCRIPTION,
        partyId: customer,
        description: 'Pro plan, yearly',
      });
    });
  }

  const account = (tb: Awaited<ReturnType<LedgerReportsService['trialBalance']>>, code: string) =>
    tb.currencies.find((c) => c.currency === 'USD')!.accounts.find((a) => a.code === code)!;

  it('recognizes a yearly fee of 1,200.00 at 100.00 a month, the deferred balance rolling forward for 12 months', async () => {
    const org = randomUUID();
    const customer = randomUUID();
    const schedule = await billInAdvance(org, customer, '1200.00', '2025-01-01', '2026-01-01');
    expect(schedule).toMatchObject({ created: true, finalPeriod: '2025-12', fromAccount: ACCOUNTS.DEFERRED_REVENUE });

    let expectedClosing = Money.zero('USD');
    for (const [i, period] of periodsBetween('2025-01', '2025-12').entries()) {
      const run = await recognition.recognize(em(), org, period);
      expect(run).toMatchObject({ entriesPosted: 1 });
      expect(run.recognized.USD.format()).toBe('100.00');

      const tb = await reports.trialBalance(em(), org, period);
      const deferred = account(tb, ACCOUNTS.DEFERRED_REVENUE);
      const billed = deferred.credits; // billed in advance this month
      const recognized = deferred.debits; // recognized this month
      // Roll-forward, in the liability's (credit) terms: opening + billed − recognized = closing.
      const opening = deferred.opening.negated();
      const closing = deferred.closing.negated();
      expect(opening.plus(billed).minus(recognized).equals(closing)).toBe(true);
      expect(recognized.format()).toBe('100.00');
      expect(billed.format()).toBe(i === 0 ? '1200.00' : '0.00');
      expect(opening.equals(expectedClosing)).toBe(true);
      expect(closing.format()).toBe(Money.of(String(1100 - 100 * i), 'USD').format());
      expectedClosing = closing;
      expect(account(tb, ACCOUNTS.REVENUE_SUBSCRIPTION).credits.format()).toBe('100.00');
      expect(tb.currencies[0].balanced).toBe(true);
    }
    const progress = await recognition.getSchedule(em(), org, schedule.id);
    expect(progress.recognized.format()).toBe('1200.00');
    expect(progress.remaining.isZero()).toBe(true);
    expect(progress.months.every((m) => m.entryId && m.entryDate === lastDay(m.period))).toBe(true);
    // Entries are dated on each month's last day, tied to the schedule.
    const entries = await ledger.entriesForSource(em(), org, 'deferral_schedule', schedule.id);
    expect(entries.map((e) => e.date)).toEqual(periodsBetween('2025-01', '2025-12').map(lastDay));
    expect(entries[1].lines.map((l) => [l.accountCode, l.partyId, l.debit, l.credit])).toEqual([
      [ACCOUNTS.DEFERRED_REVENUE, customer, 10000n, 0n],
      [ACCOUNTS.REVENUE_SUBSCRIPTION, customer, 0n, 10000n],
    ]);
    // Once fully recognized, a later run does not look at it again.
    expect(await recognition.recognize(em(), org, '2026-01')).toMatchObject({ schedules: 0, entriesPosted: 0 });
  });

  it('recognizes a partial first month by its days', async () => {
    const org = randomUUID();
    // Mar 15 → Jan 1 (a prorated first period): March is 17/31 of a month, then 9 whole months.
    await billInAdvance(org, randomUUID(), '296.00', '2025-03-15', '2026-01-01');
    const feb = await recognition.recognize(em(), org, '2025-02');
    expect(feb).toMatchObject({ schedules: 0, entriesPosted: 0 });
    const mar = await recognition.recognize(em(), org, '2025-03');
    expect(mar.recognized.USD.format()).toBe('17.00');
    const apr = await recognition.recognize(em(), org, '2025-04');
    expect(apr.recognized.USD.format()).toBe('31.00');
    const tb = await reports.trialBalance(em(), org, '2025-04');
    expect(account(tb, ACCOUNTS.DEFERRED_REVENUE).closing.format()).toBe('-248.00');
  });

  it('catches up months a late schedule missed, moving a closed month’s share to the open month with corrects_period', async () => {
    const org = randomUUID();
    const customer = randomUUID();
    // January is closed before the schedule (Jan–Mar, 90.00) exists.
    await ledger.post(em(), {
      organizationId: org,
      currency: 'USD',
      date: '2025-01-10',
      key: 'cash-sale',
      source: { type: 'test', id: 'cash' },
      description: 'January activity',
      lines: [
        { account_code: ACCOUNTS.CASH, debit: 500n },
        { account_code: ACCOUNTS.REVENUE_SERVICES, credit: 500n },
      ],
    });
    await closeMonth(em(), periods, org, '2025-01');
    const schedule = await billInAdvance(org, customer, '90.00', '2025-01-01', '2025-04-01');
    const run = await recognition.recognize(em(), org, '2025-03');
    expect(run).toMatchObject({ schedules: 1, entriesPosted: 3 });
    const entries = await ledger.entriesForSource(em(), org, 'deferral_schedule', schedule.id);
    expect(entries.map((e) => [e.key.split(':').pop(), e.date, e.correctsPeriod])).toEqual([
      ['2025-01', '2025-02-01', '2025-01'],
      ['2025-02', '2025-02-28', null],
      ['2025-03', '2025-03-31', null],
    ]);
  });

  it('creates a schedule once per key; the same key with other terms is a 409; bad terms are 400s', async () => {
    const org = randomUUID();
    const customer = randomUUID();
    const input = {
      organizationId: org,
      key: 'line-1',
      source: { type: 'invoice_line', id: 'line-1' },
      total: Money.of('50.00', 'USD'),
      serviceStart: '2025-01-01',
      serviceEnd: '2025-02-01',
      toAccount: ACCOUNTS.REVENUE_SEATS_ADDONS,
      partyId: customer,
    };
    const a = await recognition.createSchedule(em(), input);
    const b = await recognition.createSchedule(em(), input);
    expect(b).toMatchObject({ id: a.id, created: false });
    await expect(recognition.createSchedule(em(), { ...input, total: Money.of('51.00', 'USD') })).rejects.toMatchObject({ status: 409 });
    await expect(recognition.createSchedule(em(), { ...input, key: 'x', toAccount: '9999' })).rejects.toMatchObject({ code: 'unknown_account' });
    await expect(recognition.createSchedule(em(), { ...input, key: 'y', serviceEnd: '2024-12-01' })).rejects.toMatchObject({ code: 'empty_service_period' });
    await expect(recognition.createSchedule(em(), { ...input, key: 'z', total: Money.zero('USD') })).rejects.toMatchObject({ code: 'not_positive' });
    await expect(em().execute('update deferral_schedules set total_minor = 1 where id = ?', [a.id])).rejects.toThrow(/append-only/);
    // Many at once: the same rules, in input order; an existing key with the same terms is returned, one with others fails the call.
    const many = await recognition.createSchedules(em(), [
      { ...input, key: 'line-2', source: { type: 'invoice_line', id: 'line-2' }, serviceEnd: '2025-04-01', total: Money.of('90.00', 'USD') },
      input,
      { ...input, key: 'line-3', source: { type: 'invoice_line', id: 'line-3' }, recognizeFrom: '2025-01-15' },
    ]);
    expect(many.map((v) => [v.key, v.created, v.total.format(), v.finalPeriod, v.recognizeFrom])).toEqual([
      ['line-2', true, '90.00', '2025-03', null],
      ['line-1', false, '50.00', '2025-01', null],
      ['line-3', true, '50.00', '2025-01', '2025-01-15'],
    ]);
    expect(many[1].id).toBe(a.id);
    await expect(
      recognition.createSchedules(em(), [
        { ...input, key: 'line-4', source: { type: 'invoice_line', id: 'line-4' } },
        { ...input, key: 'line-2', source: { type: 'invoice_line', id: 'line-2' } },
      ]),
    ).rejects.toMatchObject({ status: 409 });
    expect(await em().execute(`select key from deferral_schedules where organization_id = ? and key = 'line-4'`, [org])).toEqual([]);
  });

  it('runs as the ledger.recognize-revenue job through BullMQ; running it twice posts once', async () => {
    const org = randomUUID();
    await billInAdvance(org, randomUUID(), '1200.00', '2025-01-01', '2026-01-01');
    const config = api.app.get(AppConfig);
    const dispatcher = api.app.get(JobDispatcher);
    const connection = redisConnection(config.redisUrl);
    const worker = new Worker('ledger', (job: Job) => dispatcher.dispatch(job), { connection, prefix: config.queuePrefix });
    const events = new QueueEvents('ledger', { connection, prefix: config.queuePrefix });
    events.on('error', () => undefined); // closing races are not test failures
    try {
      await events.waitUntilReady();
      const job = await recognition.enqueue(org, '2025-06');
      expect(job.id).toBe(recognitionJobId(org, '2025-06'));
      const first = await job.waitUntilFinished(events, 20_000);
      expect(first).toEqual({ period: '2025-06', schedules: 1, entries_posted: 6, recognized: { USD: '600.00' } });
      // The same job again: BullMQ keeps one job per id…
      const dup = await recognition.enqueue(org, '2025-06');
      expect(dup.id).toBe(job.id);
      // …and a run that does execute again (a retry, a new job after the old one is removed) posts nothing.
      await api.app.get(JobsService).queue('ledger').remove(job.id!);
      const again = await recognition.enqueue(org, '2025-06');
      expect(await again.waitUntilFinished(events, 20_000)).toEqual({ period: '2025-06', schedules: 1, entries_posted: 0, recognized: {} });
    } finally {
      await worker.close();
      await events.close();
    }
    const [{ n }] = await em().execute(`select count(*)::int as n from journal_entries where organization_id = ? and source_type = 'deferral_schedule'`, [org]);
    expect(n).toBe(6);
  });

  it('the month-start fan-out enqueues last month’s run for organizations with schedules in service', async () => {
    const org = randomUUID();
    await billInAdvance(org, randomUUID(), '120.00', '2025-04-01', '2025-05-01');
    const jobs = api.app.get(RevenueRecognitionJobs);
    const count = await jobs.fanOut(new Date('2025-05-01T00:30:00Z'));
    expect(count).toBeGreaterThanOrEqual(1);
    const job = await api.app.get(JobsService).queue('ledger').getJob(recognitionJobId(org, '2025-04'));
    expect(job?.data).toEqual({ organization_id: org, period: '2025-04' });
  });
});
