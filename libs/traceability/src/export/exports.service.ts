import { createHash } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { IsolationLevel } from '@mikro-orm/core';
import { EntityManager } from '@mikro-orm/postgresql';
import { LedgerReportsService } from '@closebook/ledger';
import { AppConfig, AuditService, ConflictError, decodeCursor, afterCursor, isUuid, JobsService, NotFoundError } from '@closebook/platform';
import { Export, type ExportKind } from './export.entity';
import { WorkbookSheetRegistry, type WorkbookSummaryLine } from './sheet-registry';
import { periodScope } from './sql';
import { SheetRefs } from './formula-refs';
import { computeTieOuts, INFO } from './tie-outs';
import { EXCEL_MAX_DATA_ROWS, writeWorkbook, type WorkbookProgress } from './workbook-writer';

/**
 * Deterministic BullMQ job id of an export: one job per export, however often it is enqueued.
 * (BullMQ accepts a custom id with ':' only in three parts, hence the organization.)
 */
export const exportJobId = (organizationId: string, exportId: string) => `export:${organizationId}:${exportId}`;

/**
 * Settings of the writer. A provider, so tests (and operators embedding the library) can lower the
 * sheet split threshold; `run()` also takes per-call overrides.
 */
@Injectable()
export class ExportOptions {
  /** Data rows per sheet before it continues on "<name> 2" (Excel's limit by default). */
  maxRowsPerSheet = EXCEL_MAX_DATA_ROWS;
  /** Rows between two progress updates (the exports row and the BullMQ job). */
  progressEvery = 10_000;
}

export interface RequestedBy {
  actor: string;
  keyId: string | null;
}

export interface RunOptions {
  maxRowsPerSheet?: number;
  progressEvery?: number;
  onProgress?: (p: WorkbookProgress) => unknown;
}

/**
 * Auditor workbook exports (docs/exports.md): request (a row and a job), run (the streaming writer
 * in one read-only snapshot), status and the file.
 */
@Injectable()
export class ExportsService {
  private readonly logger = new Logger('ExportsService');

  constructor(
    private readonly config: AppConfig,
    private readonly jobs: JobsService,
    private readonly audit: AuditService,
    private readonly registry: WorkbookSheetRegistry,
    private readonly options: ExportOptions,
    private readonly ledgerReports: LedgerReportsService,
  ) {}

  /** Where finished files live (`EXPORTS_DIR`, relative to the working directory unless absolute). */
  get directory(): string {
    const dir = this.config.values.EXPORTS_DIR;
    return isAbsolute(dir) ? dir : resolve(process.cwd(), dir);
  }

  /** Records the request (status queued, audited) in one transaction; `enqueue` sends the job. */
  async create(em: EntityManager, organizationId: string, input: { kind: ExportKind; period: string }, by: RequestedBy): Promise<Export> {
    periodScope(organizationId, input.period);
    return em.transactional(async (tx) => {
      const exp = tx.create(Export, { organizationId, kind: input.kind, period: input.period, requestedBy: by.actor, requestedKeyId: by.keyId });
      this.audit.record(tx, { organizationId, action: 'export.requested', resourceType: 'export', resourceId: exp.id, data: { kind: input.kind, period: input.period } });
      return exp;
    });
  }

  /** Sends the export's job (job id `export:{org}:{id}`: a retried request is one job). */
  async enqueue(exp: Export): Promise<void> {
    await this.jobs.enqueue('exports.audit-workbook', { organization_id: exp.organizationId, export_id: exp.id }, { jobId: exportJobId(exp.organizationId, exp.id), attempts: 2 });
  }

  async get(em: EntityManager, organizationId: string, id: string): Promise<Export> {
    const exp = isUuid(id) ? await em.findOne(Export, { id, organizationId }) : null;
    if (!exp) throw new NotFoundError('export', id);
    return exp;
  }

  async list(em: EntityManager, organizationId: string, q: { limit: number; cursor?: string }): Promise<Export[]> {
    return em.find(Export, { organizationId, ...afterCursor(decodeCursor(q.cursor)) }, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: q.limit + 1 });
  }

  /** The finished file as a stream; 409 `export_not_ready` until the export is done. */
  async file(em: EntityManager, organizationId: string, id: string): Promise<{ exp: Export; stream: ReadStream; size: number; filename: string }> {
    const exp = await this.get(em, organizationId, id);
    if (exp.status !== 'done' || !exp.filePath) {
      throw new ConflictError('export_not_ready', `export ${id} is ${exp.status}${exp.status === 'failed' ? `: ${exp.error}` : ''}; its file is available once it is done`, 'id', { status: exp.status });
    }
    const info = await stat(exp.filePath).catch(() => null);
    if (!info) throw new ConflictError('export_file_missing', `the file of export ${id} is no longer on this server`, 'id');
    return { exp, stream: createReadStream(exp.filePath), size: info.size, filename: `closebook-audit-${exp.period}-${exp.id}.xlsx` };
  }

  /**
   * Writes the workbook of an export: status running, then the streaming writer inside one
   * read-only REPEATABLE READ transaction (one snapshot for every sheet and the Summary), progress
   * written to the row outside it, then the file renamed into place with its size and SHA-256.
   * A done export is returned as it is (a duplicated job has one effect); a failed one is retried.
   */
  async run(em: EntityManager, exportId: string, opts: RunOptions = {}): Promise<Export> {
    const exp = await em.fork().findOne(Export, { id: exportId });
    if (!exp) throw new NotFoundError('export', exportId);
    if (exp.status === 'done') return exp;
    const conn = em.getConnection();
    // Outside the snapshot transaction: progress must be visible while the export runs.
    const update = (sql: string, params: unknown[]) => conn.execute(sql, params, 'run');
    await update(`update exports set status = 'running', started_at = now(), progress = 0, rows_written = 0, error = null where id = ?`, [exp.id]);

    await mkdir(this.directory, { recursive: true });
    const finalPath = join(this.directory, `${exp.id}.xlsx`);
    const tmpPath = `${finalPath}.part`;
    const scope = periodScope(exp.organizationId, exp.period);
    const maxRowsPerSheet = opts.maxRowsPerSheet ?? this.options.maxRowsPerSheet;
    const progressEvery = opts.progressEvery ?? this.options.progressEvery;
    try {
      const result = await em.fork().transactional(
        async (tx) => {
          // Sorts of large sheets (the month's events) stay in memory instead of spilling to disk.
          await tx.execute(`set local work_mem = '128MB'`, [], 'run');
          const sheets = this.registry.sheets();
          const counts = new Map<string, number>();
          for (const s of sheets) if (s.count) counts.set(s.name, await s.count(tx, exp.organizationId, exp.period));
          const estimated = [...counts.values()].reduce((a, b) => a + b, 0);
          await update('update exports set rows_estimated = ? where id = ?', [estimated, exp.id]);
          // Every sheet has an exact count, so the sheets' parts (and the formulas over them) are known before writing.
          const refs = new SheetRefs(sheets, counts, maxRowsPerSheet);
          const tb = await this.ledgerReports.trialBalance(tx, exp.organizationId, exp.period);
          const summary: WorkbookSummaryLine[] = await computeTieOuts(tx, scope, refs, tb);
          for (const s of sheets) {
            if (s.summary) summary.push(...(await s.summary(tx, exp.organizationId, exp.period)));
            else if (s.placeholder) summary.push({ label: `${s.name}: not included`, expected: null, actual: null, status: INFO, detail: s.emptyNote });
          }
          let last = 0;
          return writeWorkbook(
            tx,
            tmpPath,
            { scope, exportId: exp.id, generatedAt: new Date(), sheets, counts, summary },
            {
              maxRowsPerSheet,
              progressEvery,
              onProgress: async (p) => {
                const progress = p.estimated > 0 ? Math.min(0.99, p.written / p.estimated) : 0;
                if (p.written !== last) await update('update exports set progress = ?, rows_written = ? where id = ?', [progress, p.written, exp.id]);
                last = p.written;
                await opts.onProgress?.(p);
              },
            },
          );
        },
        { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
      );
      await rename(tmpPath, finalPath);
      const { size, sha256 } = await fileDigest(finalPath);
      const done = await em.fork().transactional(async (tx) => {
        const row = await tx.findOneOrFail(Export, { id: exp.id });
        tx.assign(row, { status: 'done', progress: 1, rowsWritten: result.rows, sheets: result.sheets, filePath: finalPath, sizeBytes: size, sha256, finishedAt: new Date(), error: null });
        this.audit.record(tx, { organizationId: row.organizationId, action: 'export.completed', resourceType: 'export', resourceId: row.id, data: { rows: result.rows, size, sha256 } });
        return row;
      });
      this.logger.log({ export: exp.id, rows: result.rows, size }, 'export written');
      return done;
    } catch (err) {
      await rm(tmpPath, { force: true }).catch(() => undefined);
      const message = err instanceof Error ? err.message : String(err);
      await em.fork().transactional(async (tx) => {
        const row = await tx.findOneOrFail(Export, { id: exp.id });
        tx.assign(row, { status: 'failed', error: message.slice(0, 2000), finishedAt: new Date() });
        this.audit.record(tx, { organizationId: row.organizationId, action: 'export.failed', resourceType: 'export', resourceId: row.id, data: { error: message.slice(0, 500) } });
      });
      throw err;
    }
  }
}

async function fileDigest(path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}
