import { Injectable } from '@nestjs/common';
import { Command, CommandRunner, Option, SubCommand } from 'nest-commander';
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import { Presets, SingleBar } from 'cli-progress';
import { RequestScopes, type Principal } from '@closebook/platform';
import { CHECK_KEYS, CloseService, ReconciliationRunsService, type CheckKey, type CloseStatus } from '@closebook/reconciliation';
import { print } from '../output';
import { resolveOrganization } from '../organization';

interface CloseOpts {
  period?: string;
  org?: string;
  step?: string;
  as?: string;
  note?: string;
  progress?: boolean;
  json?: boolean;
}

function statusLines(s: CloseStatus): string[] {
  return [
    `${s.period}: ${s.state}${s.closed ? ` by ${s.closed.by} at ${s.closed.at}` : ''} (ledger ${s.ledger_status}), ${s.closable ? 'ready to close' : `${s.blockers.length} blocker(s)`}`,
    ...s.checks.map(
      (c) =>
        `  check ${c.check.padEnd(18)} ${(c.status ?? 'not run').padEnd(14)} ${c.fresh ? 'current' : c.run_id ? 'STALE' : ''}${c.population ? `  ${c.population.count} ${c.population.unit}` : ''}${c.failed ? `  ${c.failed} failed item(s)` : ''}`,
    ),
    `  exceptions: ${s.exceptions.open} open, ${s.exceptions.assigned} assigned, ${s.exceptions.escalated} escalated`,
    ...s.exceptions.queues.map((q) => `    ${q.key.padEnd(18)} ${String(q.count).padStart(5)}  owner ${q.owner}, escalation ${q.escalation_contact}`),
    `  sign-offs: ${s.sign_offs.required
      .map((r) => {
        const g = s.sign_offs.given.find((x) => x.step === r.step);
        return `${r.step} ${g ? `${g.signer} ${g.state === 'valid' ? '✓' : `STALE (${g.stale_checks.join(', ')})`}` : '—'}`;
      })
      .join(', ')}`,
    ...s.blockers.map((b) => `  BLOCKER ${b.code}: ${b.message}`),
  ];
}

/**
 * What every `close` subcommand needs. `@Injectable()` is what makes the compiler (tsc and swc alike)
 * emit this constructor's `design:paramtypes`: the subcommands without a constructor of their own
 * inherit that metadata through the prototype chain, so Nest injects CloseService and MikroORM into
 * them. Without it Nest saw no parameters and built them with nothing (`reading 'em'` of undefined).
 */
@Injectable()
abstract class CloseSubCommand extends CommandRunner {
  constructor(protected readonly close: CloseService, protected readonly orm: MikroORM) {
    super();
  }

  protected async scoped<T>(opts: CloseOpts, fn: (em: EntityManager, org: string, principal: Principal) => Promise<T>): Promise<T> {
    if (!opts.period) throw new Error('--period is required');
    const em = this.orm.em.fork() as EntityManager;
    const org = await resolveOrganization(em, opts.org);
    const principal: Principal = { organizationId: org, keyId: null, role: 'system', actor: opts.as ? `cli:${opts.as}` : 'cli' };
    return RequestScopes.run({ requestId: `cli:close:${Date.now()}`, principal }, () => fn(em, org, principal));
  }

  @Option({ flags: '--period <YYYY-MM>', description: 'the month', required: true })
  parsePeriod(v: string) {
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(v)) throw new Error('--period must be a month as YYYY-MM');
    return v;
  }

  @Option({ flags: '--org <id>', description: 'organization id (default: the only organization)' })
  parseOrg(v: string) {
    return v;
  }

  @Option({ flags: '--json', description: 'print JSON' })
  parseJson() {
    return true;
  }
}

@SubCommand({ name: 'status', description: 'What blocks the close of a month' })
export class CloseStatusCommand extends CloseSubCommand {
  async run(_: string[], opts: CloseOpts): Promise<void> {
    const s = await this.scoped(opts, (em, org) => this.close.status(em, org, opts.period!));
    print(opts.json, s, statusLines(s));
  }
}

@SubCommand({ name: 'run', description: 'Month-end work (rollups, recognition, accruals, late usage), then every reconciliation check, with a progress bar' })
export class CloseRunCommand extends CloseSubCommand {
  constructor(close: CloseService, orm: MikroORM, private readonly runs: ReconciliationRunsService) {
    super(close, orm);
  }

  async run(_: string[], opts: CloseOpts): Promise<void> {
    const result = await this.scoped(opts, async (em, org, principal) => {
      const monthEnd = await this.close.monthEnd(em, org, opts.period!);
      const showBar = opts.progress ?? process.stderr.isTTY === true;
      const bar = showBar ? new SingleBar({ format: ' reconciliation |{bar}| {value}/{total} checks  {check}  {duration_formatted}', hideCursor: true }, Presets.shades_classic) : null;
      const run = await this.runs.create(em, org, opts.period!, { startedBy: principal.actor });
      bar?.start(run.checks.length, 0, { check: '' });
      for (const [i, key] of (run.checks as CheckKey[]).entries()) {
        bar?.update(i, { check: key });
        try {
          await this.runs.runCheck(em.fork(), run.id, key);
        } catch (err) {
          await this.runs.recordCheckError(em.fork(), run.id, key, err);
        }
      }
      bar?.update(run.checks.length, { check: '' });
      bar?.stop();
      const finished = await this.runs.finish(em.fork(), run.id);
      const status = await this.close.status(em.fork(), org, opts.period!);
      return { monthEnd, run: finished, status };
    });
    const capture = result.run.capture as { checks?: Record<string, { status: string; items?: number; failed?: number }> } | null;
    print(opts.json, { month_end: result.monthEnd, run_id: result.run.id, run_status: result.run.status, capture_hash: result.run.captureHash, status: result.status }, [
      `Month end ${result.monthEnd.period}: ${result.monthEnd.rollups.processed} rollup(s) refreshed, ${result.monthEnd.recognition.entries_posted} recognition entr(ies), ${result.monthEnd.accruals.accrued} accrual(s), ${result.monthEnd.late_usage.exceptions_created} late-usage exception(s)`,
      `Reconciliation run ${result.run.id}: ${result.run.status} (capture sha256 ${result.run.captureHash ?? '-'})`,
      ...CHECK_KEYS.map((k) => `  ${k.padEnd(18)} ${capture?.checks?.[k]?.status ?? '-'}  ${capture?.checks?.[k]?.items ?? 0} item(s), ${capture?.checks?.[k]?.failed ?? 0} failed`),
      ...statusLines(result.status),
    ]);
  }

  @Option({ flags: '--progress', description: 'progress bar (default: when stderr is a terminal)' })
  parseProgress() {
    return true;
  }
}

@SubCommand({ name: 'sign-off', description: 'Sign a step of the close (preparer, reviewer…) as a named person' })
export class CloseSignOffCommand extends CloseSubCommand {
  async run(_: string[], opts: CloseOpts): Promise<void> {
    if (!opts.step || !opts.as) throw new Error('--step and --as are required');
    const s = await this.scoped(opts, (em, org, principal) => this.close.signOff(em, org, opts.period!, { step: opts.step!, note: opts.note, signer: principal, signerLabel: `cli:${opts.as}` }));
    print(opts.json, { id: s.id, period: s.period, step: s.step, signer: s.signer, signed_at: s.signed_at }, [`${s.period}: "${s.step}" signed by ${s.signer}`]);
  }

  @Option({ flags: '--step <step>', description: 'the sign-off step', required: true })
  parseStep(v: string) {
    return v;
  }

  @Option({ flags: '--as <name>', description: 'who signs (recorded as cli:<name>)', required: true })
  parseAs(v: string) {
    return v;
  }

  @Option({ flags: '--note <text>', description: 'a note kept with the sign-off' })
  parseNote(v: string) {
    return v;
  }
}

@SubCommand({ name: 'close', description: 'Close and lock the month, or list what blocks it' })
export class CloseCloseCommand extends CloseSubCommand {
  async run(_: string[], opts: CloseOpts): Promise<void> {
    const res = await this.scoped(opts, (em, org, principal) => this.close.close(em, org, opts.period!, principal));
    print(opts.json, { period: opts.period, closed_at: res.ledger.closedAt, closed_by: res.status.closed?.by ?? null, transitioned: res.transitioned }, [
      `${opts.period} ${res.transitioned ? 'closed' : 'was already closed'} at ${res.ledger.closedAt?.toISOString() ?? '-'} by ${res.status.closed?.by ?? '-'}`,
    ]);
  }

  @Option({ flags: '--as <name>', description: 'who closes (recorded as cli:<name>)' })
  parseAs(v: string) {
    return v;
  }
}

@Command({ name: 'close', description: 'Month-end close: status, run, sign-off, close', subCommands: [CloseStatusCommand, CloseRunCommand, CloseSignOffCommand, CloseCloseCommand] })
export class CloseCommand extends CommandRunner {
  async run(): Promise<void> {
    this.command.help();
  }
}
