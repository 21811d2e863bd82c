/**
 * @closebook/metering — event ingest, rollups and allowance state (SPEC §3). Rules and storage:
 * docs/metering.md.
 */
export { MeteringModule } from './metering.module';
export { MeteringWorkerModule } from './metering-worker.module';

export {
  MAX_EVENTS_PER_BATCH,
  MAX_EVENT_ID_LENGTH,
  FUTURE_TOLERANCE_MS,
  validateEvent,
  parseIngestBody,
  parseInstant,
} from './ingest/event-validation';
export type { ValidEvent, RejectedEvent, PropertyValue } from './ingest/event-validation';
export { IngestService } from './ingest/ingest.service';
export type { IngestResult } from './ingest/ingest.service';
export { UsagePartitions, partitionName } from './ingest/partitions';

export { UsageRollup, METER_AGGREGATIONS } from './rollups/usage-rollup.entity';
export type { MeterAggregation } from './rollups/usage-rollup.entity';
export { RollupsService } from './rollups/rollups.service';
export type { RollupValue, StoredRollup, RecomputeResult, ProcessDirtyResult, RollupPair } from './rollups/rollups.service';
export { UsageService } from './rollups/usage.service';
export type { UsageView } from './rollups/usage.service';
export { digestOf, eventDigest } from './rollups/digest';
export { aggregateCtes, COMPUTE_ROLLUPS_SQL, METER_VALUE_COLUMNS, pairKeys, PAIRS_BY_KEY, rollupResultsCte } from './rollups/rollup-sql';

export { periodAllowanceStates, thresholdsReached, meteredProductsOf, ALLOWANCE_THRESHOLDS } from './allowance/allowance-calculator';
export type { PeriodAllowanceInput, AllowanceStates, DimensionState, DimensionUsage, UnpricedUsage, AllowanceThreshold } from './allowance/allowance-calculator';
export { AllowanceStateService, LIVE_ESTIMATE_MAX_EVENTS } from './allowance/allowance-state.service';
export type { AllowanceStateView } from './allowance/allowance-state.service';
export { AllowanceEngine, ALLOWANCE_GRANTS_SOURCE, TableAllowanceGrantsSource } from './allowance/allowance-engine';
export type { AllowanceGrantsSource } from './allowance/allowance-engine';
export { MeteringJobs, ROLLUP_SWEEP_EVERY_MS, ATTRIBUTION_SWEEP_EVERY_MS } from './jobs/metering.jobs';
export { storedRollupsOf, stalePairsOf } from './rollups/stored-rollups';
export type { StoredRollupRow } from './rollups/stored-rollups';
