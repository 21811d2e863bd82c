import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import type { Job } from 'bullmq';
import { JobHandler, type JobPayload } from '@closebook/platform';
import { ExportsService } from './exports.service';

/** The `exports.audit-workbook` job (queue `exports`, job id `export:{org}:{id}`). */
@Injectable()
export class ExportsJobs {
  constructor(private readonly exports: ExportsService, private readonly em: EntityManager) {}

  @JobHandler('exports.audit-workbook')
  async auditWorkbook(payload: JobPayload<'exports.audit-workbook'>, job?: Job) {
    const done = await this.exports.run(this.em, payload.export_id, {
      onProgress: (p) => job?.updateProgress({ written: p.written, estimated: p.estimated, sheet: p.sheet }),
    });
    return { export_id: done.id, rows: done.rowsWritten, size: done.sizeBytes, sha256: done.sha256 };
  }
}
