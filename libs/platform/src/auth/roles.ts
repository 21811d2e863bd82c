export const ROLES = ['admin', 'finance', 'support', 'auditor', 'ingest'] as const;
export type Role = (typeof ROLES)[number];

/** Read access shared by the roles that look at billing data (not `ingest`, which only sends events). */
export const READ_ROLES: Role[] = ['admin', 'finance', 'support', 'auditor'];
