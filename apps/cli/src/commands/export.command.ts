import { copyFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command, CommandRunner, Option } from 'nest-commander';
import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import { Presets, SingleBar } from 'cli-progress';
import { RequestScopes } from '@closebook/platform';
import { ExportsService } from '@closebook/traceability';
import { print } from '../output';
import { resolveOrganization } from '../organization';

interface ExportOpts {
  period?: string;
  out?: string;
  org?: string;
  progress?: boolean;
  json?: boolean;
}

/**
 * `export --period YYYY-MM --out FILE [--org ID]`: the auditor workbook of a month, written **in
 * this process** (no worker needed) by the same service the `exports.audit-workbook` job runs; the
 * export is recorded in `exports` (requested by `cli`) like one requested over HTTP, so it can
 * also be downloaded from the API afterwards. A progress bar follows the writer.
 */
@Command({ name: 'export', description: 'Write the auditor workbook (.xlsx) of a month to a file' })
export class ExportCommand extends CommandRunner {
  constructor(private readonly exports: ExportsService, private readonly orm: MikroORM) {
    super();
  }

  async run(_: string[], opts: ExportOpts): Promise<void> {
    if (!opts.period || !opts.out) throw new Error('--period and --out are required');
    const em = this.orm.em.fork() as EntityManager;
    const org = await resolveOrganization(em, opts.org);
    const principal = { organizationId: org, keyId: null, role: 'system' as const, actor: 'cli' };
    const showBar = opts.progress ?? process.stderr.isTTY === true;
    const bar = showBar ? new SingleBar({ format: ' audit workbook |{bar}| {percentage}% {value}/{total} rows  {sheet}  {duration_formatted}', hideCursor: true }, Presets.shades_classic) : null;
    const done = await RequestScopes.run({ requestId: `cli:export:${Date.now()}`, principal }, async () => {
      const exp = await this.exports.create(em, org, { kind: 'audit_workbook', period: opts.period! }, { actor: 'cli', keyId: null });
      let started = false;
      try {
        return await this.exports.run(em, exp.id, {
          onProgress: (p) => {
            if (!bar) return;
            if (!started) bar.start(Math.max(p.estimated, 1), 0, { sheet: '' });
            started = true;
            bar.setTotal(Math.max(p.estimated, p.written, 1));
            bar.update(p.written, { sheet: p.sheet });
          },
        });
      } finally {
        if (started) bar?.stop();
      }
    });
    const out = resolve(opts.out);
    await copyFile(done.filePath!, out);
    print(opts.json, { export_id: done.id, file: out, rows: done.rowsWritten, size: done.sizeBytes, sha256: done.sha256, sheets: done.sheets }, [
      `Auditor workbook of ${done.period} written to ${out}`,
      `  export ${done.id}: ${done.rowsWritten.toLocaleString('en-US')} rows, ${(done.sizeBytes ?? 0).toLocaleString('en-US')} bytes, sha256 ${done.sha256}`,
      ...(done.sheets ?? []).map((s) => `  ${s.name.padEnd(26)} ${s.rows.toLocaleString('en-US')}`),
    ]);
  }

  @Option({ flags: '--period <YYYY-MM>', description: 'the month to export', required: true })
  parsePeriod(v: string) {
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(v)) throw new Error('--period must be a month as YYYY-MM');
    return v;
  }

  @Option({ flags: '--out <file>', description: 'where to write the .xlsx', required: true })
  parseOut(v: string) {
    return v;
  }

  @Option({ flags: '--org <id>', description: 'organization id (default: the only organization)' })
  parseOrg(v: string) {
    return v;
  }

  @Option({ flags: '--progress', description: 'progress bar (default: when stderr is a terminal)' })
  parseProgress() {
    return true;
  }

  @Option({ flags: '--json', description: 'print JSON' })
  parseJson() {
    return true;
  }
}
