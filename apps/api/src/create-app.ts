import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { json, type NextFunction, type Request, type Response } from 'express';
import { buildOpenApiDocument, toErrorResponse } from '@closebook/platform';
import { ApiModule } from './app.module';

export const API_PREFIX = 'v1';
export const API_VERSION = '0.1.0';

/** The HTTP app, configured identically for `start:api` and for the end-to-end tests. */
export async function createApiApp(opts: { logger?: boolean } = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(ApiModule, {
    bufferLogs: true,
    bodyParser: false,
    ...(opts.logger === false ? { logger: false } : {}),
    abortOnError: false,
  });
  if (opts.logger !== false) app.useLogger(app.get(Logger));
  // A 10,000-event batch with properties is a few MB; strict JSON refuses bare scalars at the top.
  // Parse errors are answered here, in the one error shape, before Nest would turn them into a bare 400.
  app.use(json({ limit: '25mb', strict: true }));
  app.use((err: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (!err) return next();
    const { status, body } = toErrorResponse(err);
    res.status(status).json(body);
  });
  app.setGlobalPrefix(API_PREFIX);
  app.enableShutdownHooks();
  // Registered before init: Nest adds its not-found handler at init, and routes after it never match.
  const document = buildOpenApiDocument(app, API_PREFIX, API_VERSION);
  SwaggerModule.setup('docs', app, document as never, { jsonDocumentUrl: 'docs/openapi.json' });
  await app.init();
  return app;
}
