import { Controller, Get, HttpCode, Post, Res, StreamableFile } from '@nestjs/common';
import type { Response } from 'express';
import { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { ApiRoute, Caller, pageSchema, Roles, toPage, UuidParam, ZBody, ZQuery, type Principal } from '@closebook/platform';
import { ExportsService } from '@closebook/traceability';
import { createExportBody, exportListQuery, exportView, presentExport, XLSX_CONTENT_TYPE } from './exports.views';

const TAGS = ['exports'];

/** Auditor workbook exports (SPEC §7): request, follow, download. docs/exports.md. */
@Controller('exports')
@Roles('finance', 'auditor')
export class ExportsController {
  constructor(private readonly exports: ExportsService, private readonly em: EntityManager) {}

  @Post()
  @HttpCode(202)
  @ApiRoute({
    summary: 'Request an export (kind audit_workbook, period YYYY-MM): a background job writes the workbook; follow it with GET /v1/exports/{id}',
    tags: TAGS,
    response: exportView,
  })
  async create(@Caller() caller: Principal, @ZBody(createExportBody) body: z.infer<typeof createExportBody>) {
    const exp = await this.exports.create(this.em, caller.organizationId, body, { actor: caller.actor, keyId: caller.keyId });
    await this.exports.enqueue(exp);
    return presentExport(exp);
  }

  @Get()
  @ApiRoute({ summary: 'Exports, newest first', tags: TAGS, response: pageSchema(exportView) })
  async list(@Caller() caller: Principal, @ZQuery(exportListQuery) q: z.infer<typeof exportListQuery>) {
    return toPage(await this.exports.list(this.em, caller.organizationId, q), q.limit, presentExport);
  }

  @Get(':id')
  @ApiRoute({ summary: 'An export: status, progress, rows per sheet, and the file’s size and SHA-256 once done', tags: TAGS, response: exportView })
  async get(@Caller() caller: Principal, @UuidParam('id', 'export') id: string) {
    return presentExport(await this.exports.get(this.em, caller.organizationId, id));
  }

  @Get(':id/file')
  @ApiRoute({
    summary: 'Download the finished workbook (.xlsx); 409 export_not_ready while it is queued, running or failed',
    tags: TAGS,
    produces: XLSX_CONTENT_TYPE,
    response: z.string().describe('the workbook'),
    errors: [409],
  })
  async file(@Caller() caller: Principal, @UuidParam('id', 'export') id: string, @Res({ passthrough: true }) res: Response) {
    const { stream, size, filename, exp } = await this.exports.file(this.em, caller.organizationId, id);
    res.setHeader('ETag', `"${exp.sha256}"`);
    return new StreamableFile(stream, { type: XLSX_CONTENT_TYPE, disposition: `attachment; filename="${filename}"`, length: size });
  }
}
