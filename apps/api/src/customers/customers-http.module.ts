import { Module } from '@nestjs/common';
import { SubscriptionsModule } from '@closebook/subscriptions';
import { CustomersController } from './customers.controller';
import { SubscriptionsController } from './subscriptions.controller';

@Module({ imports: [SubscriptionsModule], controllers: [CustomersController, SubscriptionsController] })
export class CustomersHttpModule {}
