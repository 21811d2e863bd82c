import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { ApiKeyGuard, ErrorFilter, IdempotencyInterceptor, LoggingModule, PlatformModule, RequestScopeMiddleware } from '@closebook/platform';
import { PlatformHttpModule } from './platform/platform-http.module';

@Module({
  imports: [LoggingModule, PlatformModule, PlatformHttpModule],
  providers: [
    { provide: APP_GUARD, useClass: ApiKeyGuard },
    { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
    { provide: APP_FILTER, useClass: ErrorFilter },
  ],
})
export class ApiModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(RequestScopeMiddleware).forRoutes('*path');
  }
}
