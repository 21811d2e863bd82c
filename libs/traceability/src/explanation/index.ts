export { ExplanationModule } from './explanation.module';
export { ExplanationService, EVENTS_DEFAULT_LIMIT, EVENTS_MAX_LIMIT } from './explanation.service';
export { renderSteps, formatQuantity, formatPrice } from './step-text';
export type * from './explanation.types';
