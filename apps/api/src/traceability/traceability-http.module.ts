import { Module } from '@nestjs/common';
import { ExplanationModule } from '@closebook/traceability';
import { ExplanationController } from './explanation.controller';

@Module({ imports: [ExplanationModule], controllers: [ExplanationController] })
export class TraceabilityHttpModule {}
