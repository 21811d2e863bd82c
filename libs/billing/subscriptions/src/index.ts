/**
 * @closebook/subscriptions — customers, subscriptions, add-ons, recorded changes and billing
 * periods (SPEC §2). API and rules: docs/catalog.md.
 */
export * from './entities/customer.entity';
export * from './entities/subscription.entity';
export * from './entities/subscription-addon.entity';
export * from './entities/subscription-change.entity';
export * from './entities/billing-period.entity';
export * from './entities/on-demand-charge.entity';
export { SubscriptionHooks } from './subscription-hooks';
export type { SubscriptionLifecycleHook } from './subscription-hooks';
export { CustomersService } from './customers.service';
export type { CreateCustomerInput } from './customers.service';
export { SubscriptionsService, toRatingState } from './subscriptions.service';
export type {
  CreateSubscriptionInput,
  PlanChangeInput,
  PlanChangeTiming,
  PlanChangeDecision,
  CancelInput,
  ChargeInput,
  RatedState,
  StateSegmentAt,
  SeatsChangeInput,
  AddonChangeInput,
  SubscriptionStateAt,
  SubscriptionDetail,
  RecordedChange,
} from './subscriptions.service';
export { BillingPeriodsService, planPeriods, periodHorizon, serviceEndBoundary } from './billing-periods.service';
export type { PeriodSubject, PlannedPeriod } from './billing-periods.service';
export { SubscriptionsJobs } from './subscriptions.jobs';
export { SubscriptionsModule, SubscriptionsSchedulerModule, SubscriptionsScheduler, SUBSCRIPTIONS_ENTITIES } from './subscriptions.module';
