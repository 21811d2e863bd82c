import { BigIntType, Entity, Enum, Index, Property, type Opt } from '@mikro-orm/core';
import { TenantEntity } from '@closebook/platform';

export const EXPORT_KINDS = ['audit_workbook'] as const;
export type ExportKind = (typeof EXPORT_KINDS)[number];

export const EXPORT_STATUSES = ['queued', 'running', 'done', 'failed'] as const;
export type ExportStatus = (typeof EXPORT_STATUSES)[number];

/** Rows written to one sheet of a finished (or running) export; a sheet split past Excel's row limit is one entry per part. */
export interface ExportSheetCount {
  name: string;
  rows: number;
}

/**
 * One requested export (SPEC §7): an auditor workbook of one month, written by the
 * `exports.audit-workbook` job (job id `export:{org}:{id}`) to `EXPORTS_DIR/{id}.xlsx`. Progress is
 * rows written over rows estimated (both counted in the export's own snapshot).
 */
@Entity({ tableName: 'exports' })
@Index({ properties: ['organizationId', 'createdAt'] })
export class Export extends TenantEntity {
  @Enum({ items: [...EXPORT_KINDS] })
  kind!: ExportKind;

  /** The month exported, `YYYY-MM`. */
  @Property({ type: 'text' })
  period!: string;

  @Enum({ items: [...EXPORT_STATUSES], default: 'queued' })
  status: Opt<ExportStatus> = 'queued';

  /** 0..1: rows written / rows estimated. */
  @Property({ type: 'double', default: 0 })
  progress: Opt<number> = 0;

  @Property({ type: new BigIntType('number'), default: 0 })
  rowsWritten: Opt<number> = 0;

  @Property({ type: new BigIntType('number'), nullable: true })
  rowsEstimated?: number | null;

  /** Rows per sheet, in workbook order. */
  @Property({ type: 'jsonb', nullable: true })
  sheets?: ExportSheetCount[] | null;

  @Property({ type: 'text', nullable: true })
  filePath?: string | null;

  @Property({ type: new BigIntType('number'), nullable: true })
  sizeBytes?: number | null;

  @Property({ type: 'text', nullable: true })
  sha256?: string | null;

  @Property({ type: 'text', nullable: true })
  error?: string | null;

  /** Who asked: `key:<prefix>`, `cli` or `system`. */
  @Property({ type: 'text' })
  requestedBy!: string;

  @Property({ type: 'uuid', nullable: true })
  requestedKeyId?: string | null;

  @Property({ type: 'timestamptz', nullable: true })
  startedAt?: Date | null;

  @Property({ type: 'timestamptz', nullable: true })
  finishedAt?: Date | null;
}
