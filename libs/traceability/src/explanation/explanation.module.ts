import { Module } from '@nestjs/common';
import { ExplanationService } from './explanation.service';

/** "What produced this charge?": read-only, SQL over the billing, ledger and close tables. */
@Module({ providers: [ExplanationService], exports: [ExplanationService] })
export class ExplanationModule {}
