import { Module } from '@nestjs/common';
import { LedgerModule } from '@closebook/ledger';
import { LedgerController } from './ledger.controller';

@Module({ imports: [LedgerModule], controllers: [LedgerController] })
export class LedgerHttpModule {}
