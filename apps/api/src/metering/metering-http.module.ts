import { Module } from '@nestjs/common';
import { MeteringModule } from '@closebook/metering';
import { EventsController } from './events.controller';
import { UsageController } from './usage.controller';

@Module({ imports: [MeteringModule], controllers: [EventsController, UsageController] })
export class MeteringHttpModule {}
