import { Module, type DynamicModule } from '@nestjs/common';
import { MikroOrmModule } from '@mikro-orm/nestjs';
import { AppConfig } from '../config/app-config';
import { WEBHOOK_ENTITIES } from './webhook-delivery.entity';
import { WebhookDeliveriesService } from './webhook-deliveries.service';
import { WebhookDeliveryQueue } from './webhook-delivery-queue';
import { WebhookDelivererService } from './webhook-deliverer.service';
import { WebhookDispatchService } from './webhook-dispatch.service';
import { WebhookDispatchTrigger } from './webhook-dispatch-trigger';
import { WebhookEndpointsService } from './webhook-endpoints.service';
import { WebhookJobs, WebhookScheduler } from './webhook.jobs';
import { WebhookSettings, webhookSettingsFor } from './webhook-settings';

const services = [
  WebhookEndpointsService,
  WebhookDeliveriesService,
  WebhookDeliveryQueue,
  WebhookDispatchService,
  WebhookDelivererService,
  WebhookDispatchTrigger,
];

/**
 * Webhook endpoints, the outbox dispatcher and delivery. The API imports `WebhooksModule`; the worker
 * imports `WebhooksModule.forWorker()`, which adds the dispatch job scheduler. The job handlers are in
 * both, as the registry check at bootstrap wants every job handled in every app.
 */
@Module({
  imports: [MikroOrmModule.forFeature(WEBHOOK_ENTITIES)],
  providers: [...services, WebhookJobs, { provide: WebhookSettings, inject: [AppConfig], useFactory: webhookSettingsFor }],
  exports: [...services, WebhookSettings],
})
export class WebhooksModule {
  static forWorker(): DynamicModule {
    return { module: WebhooksModule, providers: [WebhookScheduler] };
  }
}
