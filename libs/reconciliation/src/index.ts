/**
 * @closebook/reconciliation — checks, runs, tolerances, exceptions and owned queues, sign-offs,
 * close gate (SPEC §6). Exceptions: docs/exceptions.md.
 */
export * from './exceptions';
export * from './runs';
export * from './close';
