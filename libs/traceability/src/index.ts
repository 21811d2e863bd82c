/**
 * @closebook/traceability — "what produced this charge?" explanations and the auditor workbook export (SPEC §7).
 * Docs: docs/traceability.md.
 */
export * from './explanation';
export * from './export';
