/**
 * Freezes a value and everything reachable from it. For values remembered in memory and shared by
 * every caller (published plan documents, cached terms and ratings): a caller that tried to change
 * one would change it for all the others, so it throws instead (modules run in strict mode).
 */
export function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k]);
  }
  return v;
}
