import { Module, RequestMethod } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { AppConfig } from '../config/app-config';

/** JSON logs through pino; the request id is the one echoed in X-Request-Id. Keys never reach a log. */
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [AppConfig],
      useFactory: (config: AppConfig) => ({
        // Every route, in path-to-regexp 8's syntax: nestjs-pino's default ('*') is the legacy form,
        // which Nest 11 rewrites with a warning at every start once the global prefix is set.
        forRoutes: [{ path: '*path', method: RequestMethod.ALL }],
        pinoHttp: {
          level: config.logLevel,
          genReqId: (req: IncomingMessage) => {
            const h = req.headers['x-request-id'];
            return typeof h === 'string' && /^[\w.:-]{1,100}$/.test(h) ? h : randomUUID();
          },
          redact: ['req.headers.authorization', 'req.headers.cookie'],
          autoLogging: config.logLevel === 'debug' || config.logLevel === 'trace',
        },
      }),
    }),
  ],
})
export class LoggingModule {}
