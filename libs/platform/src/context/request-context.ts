import { AsyncLocalStorage } from 'node:async_hooks';
import type { Role } from '../auth/roles';

/** Who is acting; API keys for HTTP, a named system actor for jobs and schedulers. */
export interface Principal {
  organizationId: string;
  keyId: string | null;
  role: Role | 'system';
  actor: string;
}

export interface RequestScope {
  requestId: string;
  principal?: Principal;
  idempotencyKey?: string;
}

const storage = new AsyncLocalStorage<RequestScope>();

/** The ambient request (or job) scope, read by the audit log so services need not thread it through. */
export const RequestScopes = {
  run<T>(scope: RequestScope, fn: () => T): T {
    return storage.run(scope, fn);
  },
  current(): RequestScope | undefined {
    return storage.getStore();
  },
};
