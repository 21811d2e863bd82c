import { Command, CommandRunner, Option } from 'nest-commander';
import { DemoRun } from '../demo/demo-run';

/** The main job (`npm run demo`): a whole two-month cycle on the demo's own database. */
@Command({ name: 'demo', description: 'Run two month-ends of a realistic catalog through Closebook and report' })
export class DemoCommand extends CommandRunner {
  async run(_: string[], opts: { customers?: number; events?: number; progress?: boolean }): Promise<void> {
    await new DemoRun({ customers: opts.customers ?? 1000, eventsPerCustomer: opts.events ?? 370, progress: opts.progress ?? process.stdout.isTTY === true }).run();
  }

  @Option({ flags: '--customers <n>', description: 'number of customers (default 1000)' })
  parseCustomers(v: string) {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 10 || n > 100_000) throw new Error('--customers must be an integer 10..100000');
    return n;
  }

  @Option({ flags: '--events <n>', description: 'mean events per customer per month (default 370: about 1,000,000 events over two months)' })
  parseEvents(v: string) {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 5 || n > 100_000) throw new Error('--events must be an integer 5..100000');
    return n;
  }

  @Option({ flags: '--progress', description: 'progress bars (default: when stdout is a terminal)' })
  parseProgress() {
    return true;
  }
}
