/**
 * Deterministic usage for the demo: a seeded PRNG, so every run bills the same amounts. Customers
 * have a size (a few are heavy), and their events are spread over the month's days.
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DemoCustomer {
  index: number;
  externalId: string;
  plan: string;
  /** 0.2 … 8: how much this customer uses. */
  size: number;
  seats: number;
}

export interface DemoEvent {
  event_id: string;
  customer_id: string;
  event_name: string;
  timestamp: string;
  properties: Record<string, string | number | boolean>;
}

export function makeCustomers(count: number, mix: Record<string, number>, seed = 7): DemoCustomer[] {
  const rnd = prng(seed);
  const plans = Object.entries(mix);
  const out: DemoCustomer[] = [];
  for (let i = 0; i < count; i++) {
    let r = rnd();
    let plan = plans[plans.length - 1][0];
    for (const [name, share] of plans) {
      if (r < share) {
        plan = name;
        break;
      }
      r -= share;
    }
    const heavy = rnd() < 0.08;
    const size = heavy ? 3 + rnd() * 5 : 0.2 + rnd() * 1.6;
    const seats = plan === 'team' ? 4 + Math.floor(rnd() * 20) : plan.startsWith('pro') ? 1 + Math.floor(rnd() * 6) : 1;
    out.push({ index: i, externalId: `cus_${String(i).padStart(5, '0')}`, plan, size, seats });
  }
  return out;
}

/** A decimal string with `places` digits from a float used only to *generate* test data. */
const dec = (x: number, places: number) => x.toFixed(places);

/**
 * Yields the month's events in batches. `perCustomer` is the mean number of events of a size-1
 * customer; timestamps fall in [monthStart, until).
 */
export function* monthEvents(
  customers: DemoCustomer[],
  monthStart: Date,
  until: Date,
  perCustomer: number,
  batchSize: number,
  seed: number,
): Generator<DemoEvent[]> {
  const rnd = prng(seed);
  const span = until.getTime() - monthStart.getTime();
  const tag = monthStart.toISOString().slice(0, 7);
  let batch: DemoEvent[] = [];
  for (const c of customers) {
    const n = Math.max(5, Math.round(perCustomer * c.size * (0.7 + rnd() * 0.6)));
    const users = Math.max(20, Math.round(800 * c.size * (c.plan === 'team' ? 4 : 1)));
    for (let i = 0; i < n; i++) {
      const ts = new Date(monthStart.getTime() + Math.floor(rnd() * span)).toISOString();
      const r = rnd();
      let event_name: string;
      let properties: DemoEvent['properties'];
      if (r < 0.4) {
        event_name = 'api.requests';
        properties = { environment: rnd() < 0.8 ? 'production' : 'preview', count: Math.floor(200 + rnd() * 4000 * c.size) };
      } else if (r < 0.6) {
        event_name = 'cdn.transfer';
        properties = { gb: dec(0.01 + rnd() * 1.5 * c.size, 3), region: rnd() < 0.5 ? 'eu' : 'us' };
      } else if (r < 0.75) {
        event_name = 'build.finished';
        properties = { minutes: dec(1 + rnd() * 12, 1), cached: rnd() < 0.3 };
      } else if (r < 0.8) {
        event_name = 'storage.snapshot';
        properties = { gb: dec(0.5 + rnd() * 30 * c.size, 2) };
      } else if (r < 0.95) {
        event_name = 'auth.login';
        properties = { user_id: `u${Math.floor(rnd() * users)}` };
      } else {
        event_name = 'deploy.created';
        properties = { target: rnd() < 0.6 ? 'production' : 'preview' };
      }
      batch.push({ event_id: `evt_${tag}_${c.externalId}_${i}`, customer_id: c.externalId, event_name, timestamp: ts, properties });
      if (batch.length === batchSize) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length) yield batch;
}
