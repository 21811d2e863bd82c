/** A small JSON client over the real HTTP API: the demo drives Closebook the way the platform does. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly body: unknown, what: string) {
    super(`${what} → ${status} ${JSON.stringify(body)}`);
  }
}

export class DemoClient {
  constructor(private readonly baseUrl: string, private readonly key: string) {}

  withKey(key: string): DemoClient {
    return new DemoClient(this.baseUrl, key);
  }

  async request<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed = text ? JSON.parse(text) : null;
    if (!res.ok) throw new ApiError(res.status, parsed, `${method} ${path}`);
    return parsed as T;
  }

  get<T = any>(path: string) {
    return this.request<T>('GET', path);
  }

  post<T = any>(path: string, body: unknown = {}) {
    return this.request<T>('POST', path, body);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>, onDone?: () => void): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
      onDone?.();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
