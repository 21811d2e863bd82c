import { Module } from '@nestjs/common';
import { CloseModule } from '@closebook/reconciliation';
import { CloseController, CloseSettingsController } from './close.controller';

@Module({ imports: [CloseModule], controllers: [CloseController, CloseSettingsController] })
export class CloseHttpModule {}
