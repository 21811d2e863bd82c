import { Module } from '@nestjs/common';
import { WebhooksModule } from '@closebook/platform';
import { WebhookEndpointsController } from './webhook-endpoints.controller';
import { WebhookDeliveriesController } from './webhook-deliveries.controller';

@Module({ imports: [WebhooksModule], controllers: [WebhookEndpointsController, WebhookDeliveriesController] })
export class WebhooksHttpModule {}
