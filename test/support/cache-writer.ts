/**
 * A writer process for the cache consistency test: it keeps changing a few hot orders through the
 * write routine (lock, mark stale, update, reload) (PRICING_FAILED -> PRICING_FAILED, a version bump) and prints a
 * JSON line each time a write returned. FAULT makes it misbehave on its first write:
 *   pause: prints {"t":"holding"} between taking the lock and its transaction (which row-locks,
 *          marks stale and updates), then blocks a moment so the test can SIGSTOP it there (a
 *          holder paused past its lock's TTL)
 *   crash: kills itself with SIGKILL once its COMMIT has returned, just before the cache reload
 */
import { loadConfig } from '../../shared/config.ts';
import { createDb } from '../../shared/db.ts';
import { createOrderWriter } from '../../shared/orders/order-writer.ts';
import { transitionOrder } from '../../shared/orders/transition-orders.ts';
import { createProducerRedis } from '../../shared/redis.ts';

const config = loadConfig(process.env);
const orderIds = (process.env.ORDER_IDS ?? '').split(',');
const fault = process.env.FAULT ?? 'none';
const db = createDb(config);
const redis = createProducerRedis(config);
redis.on('error', () => undefined);
const writer = createOrderWriter(db, redis, config);
const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

let faulted = false;
let committed = false;
const crashNow = () => {
  faulted = true;
  say({ t: 'crashing' });
  process.kill(process.pid, 'SIGKILL');
};
db.on('query', (query: { sql: string }) => {
  if (faulted) return;
  if (fault === 'pause' && /^begin/i.test(query.sql)) {
    faulted = true;
    say({ t: 'holding' });
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300); // time for the test to SIGSTOP us here
  }
  if (fault !== 'crash') return;
  // The COMMIT has returned once the next statement starts: the reload's read of the order.
  if (committed) crashNow();
  else if (/^commit/i.test(query.sql)) committed = true;
});
// An order nobody cached is not read again: the reload's first step is then the publish.
const crashBeforeReload = <A extends unknown[], R>(step: (...args: A) => Promise<R>) =>
  (...args: A): Promise<R> => {
    if (fault === 'crash' && committed && !faulted) crashNow();
    return step(...args);
  };
const cache = writer.cache;
const writes = {
  ...writer,
  cache: Object.assign(Object.create(cache) as typeof cache, { fillMany: crashBeforeReload(cache.fillMany.bind(cache)) }),
  publisher: Object.assign(Object.create(redis) as typeof redis, { publish: crashBeforeReload(redis.publish.bind(redis) as (channel: string, message: string) => Promise<number>) }),
};

let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

say({ t: 'ready' });
while (!stopping) {
  const orderId = orderIds[Math.floor(Math.random() * orderIds.length)]!;
  try {
    const result = await transitionOrder(writes, { orderId, to: 'PRICING_FAILED', from: ['PRICING_FAILED'] }, { actor: 'consistency-test', waitMs: config.lockWaitMs });
    if (result.kind === 'done') say({ t: 'write', orderId, version: result.change.version, at: Date.now() });
  } catch (error) {
    say({ t: 'error', message: error instanceof Error ? error.message : String(error) });
    await new Promise((resolve) => setTimeout(resolve, 20)); // Redis or the lock away: pace the retries
  }
}
redis.disconnect();
await db.destroy();
