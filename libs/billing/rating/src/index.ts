/**
 * @closebook/rating — the pure rating core: price models, proration, billing periods, allowances,
 * rollover, usage and period rating. Plain data in, plain data out; no Nest, no I/O, no clock.
 * JSON shapes and the rules chosen where the spec is silent: libs/billing/rating/README.md.
 */
export { RatingError } from './errors';
export type { Issue } from './errors';

export { STEP_OPS, evaluateStep, replaySteps, replayLine, replayUsageLine, StepLog } from './steps';
export type { Step, StepOp, ReplayResult, ReplayMismatch, LineReplay, Val } from './steps';

export {
  PRICE_MODELS,
  MAX_TIERS,
  validatePriceModel,
  assertValidPriceModel,
  priceQuantity,
  describePrice,
  describePriced,
} from './price-models';
export type {
  PriceModel,
  PriceModelKind,
  FlatPrice,
  PerUnitPrice,
  PackagePrice,
  GraduatedPrice,
  VolumePrice,
  Tier,
  TierBreakdown,
  PriceResult,
  ValidatePriceOptions,
} from './price-models';

export { prorationFactor, spanFactor, toProrationInfo } from './proration';
export type { ProrationFactor, ProrationInfo } from './proration';

export {
  DEFAULT_ANCHOR_DAY,
  anchorDate,
  periodContaining,
  nextPeriod,
  previousPeriod,
  firstPeriod,
  periodsFrom,
  feeYearContaining,
  opensFeeYear,
  periodDays,
  samePeriod,
} from './billing-periods';
export type { BillingPeriod, FirstPeriod, FeeYear } from './billing-periods';

export {
  cycleAllowance,
  periodAllowance,
  drawDown,
  drawOrder,
  liveGrants,
  validateGrants,
  applyOverageMode,
  periodGrant,
} from './allowance';
export type {
  AllowanceBasis,
  OverageMode,
  AllowanceTerms,
  TransitionKind,
  AllowanceSegmentInput,
  PeriodAllowanceInput,
  PeriodAllowance,
  AllowanceSegmentShare,
  GrantKind,
  AllowanceGrant,
  GrantDraw,
  Drawdown,
} from './allowance';

export { rollover } from './rollover';
export type { RolloverConfig, RolloverInput, RolloverResult, GrantExpiry } from './rollover';

export { LINE_TYPES, totals, sumAmounts, parseTaxRate } from './lines';
export type { LineType, LineMeta, RatedLine, TaxLine, InvoiceTotals } from './lines';

export { rateUsage } from './rate-usage';
export type { UsageRatingInput, UsageKeyInput, UsageRating, AllowanceState, KeyRating } from './rate-usage';

export {
  PRORATION_STRATEGIES,
  DEFAULT_PRORATION_STRATEGY,
  validatePlanVersion,
  assertValidPlanVersion,
  keyTerms,
} from './plan';
export type {
  ProrationStrategy,
  PlanInterval,
  PlanProduct,
  RecurringPlanProduct,
  SeatPlanProduct,
  AddonPlanProduct,
  MeteredPlanProduct,
  KeyedPrice,
  RatingPlanVersion,
  SubscriptionAddon,
  SubscriptionState,
} from './plan';

export { feeComponents, monthlyEquivalent } from './fees';
export type { FeeComponent, FeeType } from './fees';

export {
  rateOpeningInvoice,
  ratePeriodInvoice,
  rateTransition,
  classifyTransition,
  isConversion,
  resolveStrategy,
} from './rate-period';
export type {
  InvoiceKind,
  RatedInvoice,
  PeriodInvoice,
  PeriodInvoiceInput,
  OpeningInvoiceInput,
  TransitionInput,
  TransitionResult,
  StateSegment,
  UsageQuantity,
  OnDemandCharge,
  AdjustmentInput,
  CreditInput,
  DrawdownRecord,
  RolloverRecord,
} from './rate-period';
