import { Module } from '@nestjs/common';
import { ExportsModule } from '@closebook/traceability';
import { ExportsController } from './exports.controller';

@Module({ imports: [ExportsModule], controllers: [ExportsController] })
export class ExportsHttpModule {}
