/** The PostgreSQL constraint a failed statement violated (unique, exclusion, check…), if any. */
export function violatedConstraint(err: unknown): string | undefined {
  const e = err as { constraint?: unknown; code?: unknown } | null;
  return e && typeof e === 'object' && typeof e.constraint === 'string' ? e.constraint : undefined;
}
