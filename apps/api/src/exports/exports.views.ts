import { z } from 'zod';
import { paginationQuery, periodString } from '@closebook/platform';
import { EXPORT_KINDS, EXPORT_STATUSES, type Export } from '@closebook/traceability';

export const createExportBody = z.object({ kind: z.enum(EXPORT_KINDS), period: periodString() }).strict();

export const exportListQuery = z.object({ ...paginationQuery }).strict();

export const exportView = z.object({
  id: z.string(),
  kind: z.enum(EXPORT_KINDS),
  period: z.string(),
  status: z.enum(EXPORT_STATUSES),
  progress: z.number().describe('0..1: rows written / rows estimated'),
  rows_written: z.number(),
  rows_estimated: z.number().nullable(),
  sheets: z.array(z.object({ name: z.string(), rows: z.number() })).nullable().describe('Rows per sheet (a sheet continued past the row limit is one entry per part)'),
  file: z
    .object({ size: z.number(), sha256: z.string(), content_type: z.string(), url: z.string() })
    .nullable()
    .describe('Set once the export is done'),
  error: z.string().nullable(),
  requested_by: z.string(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  finished_at: z.string().nullable(),
});

export const XLSX_CONTENT_TYPE = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export const presentExport = (e: Export) => ({
  id: e.id,
  kind: e.kind,
  period: e.period,
  status: e.status,
  progress: e.progress,
  rows_written: e.rowsWritten,
  rows_estimated: e.rowsEstimated ?? null,
  sheets: e.sheets ?? null,
  file: e.status === 'done' && e.sizeBytes != null && e.sha256 ? { size: e.sizeBytes, sha256: e.sha256, content_type: XLSX_CONTENT_TYPE, url: `/v1/exports/${e.id}/file` } : null,
  error: e.error ?? null,
  requested_by: e.requestedBy,
  created_at: e.createdAt.toISOString(),
  started_at: iso(e.startedAt),
  finished_at: iso(e.finishedAt),
});
