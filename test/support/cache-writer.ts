/**
 * A writer process for the cache consistency test. It changes orders through the write routine
 * (PRICING_FAILED -> PRICING_FAILED: a version bump and nothing else) and prints one JSON line per
 * write that returned: {"t":"write","orderId","version","at"}; a write that threw prints
 * {"t":"error","orderId","message","at"} (and one that changed nothing {"t":"unchanged",...}).
 * It prints {"t":"ready"} once connected.
 *
 *   ORDER_IDS  the orders it writes (comma separated)
 *   ONCE       '1': writes each of ORDER_IDS once, in order (a failed write is not tried again),
 *              then exits; otherwise it picks one at random, over and over, until SIGTERM
 *   FAULT      what goes wrong during its first write:
 *     none
 *     pause-before-update  once the order's lock is taken, before its transaction (which marks the
 *                          cached entry stale and updates the row)
 *     pause-before-reload  once the COMMIT returned, before the new version goes into the cache
 *                          Both print {"t":"holding","orderId"} there and then wait, still holding
 *                          the order's lock, for SIGUSR2: the test SIGSTOPs the process while it
 *                          holds, lets the lock expire, lets another writer take the order, and only
 *                          then sends SIGCONT and SIGUSR2. The hold cannot end on its own, so the
 *                          stop always lands inside it.
 *     crash                prints {"t":"crashing"} and kills itself (SIGKILL) once the COMMIT
 *                          returned, before the cache reload
 */
import { loadConfig, type Config } from '../../shared/config.ts';
import { createDb } from '../../shared/db.ts';
import { createOrderWriter } from '../../shared/orders/order-writer.ts';
import { transitionOrder } from '../../shared/orders/transition-orders.ts';
import { createProducerRedis } from '../../shared/redis.ts';

/** Where a fault can strike inside one write. Each step may hold the write up as long as it likes. */
interface WriteSteps {
  /**
   * The orders' locks are taken; nothing is written yet. (The routine marks the cached entries
   * stale inside its transaction, under the rows' locks: a pause there would hold MySQL row locks
   * like any paused transaction, so the paused holder of this fault stops just before it.)
   */
  locked(orderIds: readonly string[]): Promise<void>;
  /** The rows are committed; the cache is not reloaded yet. */
  reloading(orderIds: readonly string[]): Promise<void>;
}

interface WriteRoutine {
  /** Changes one order; resolves with its new version, or undefined when the routine changed nothing. */
  write(orderId: string): Promise<number | undefined>;
  close(): Promise<void>;
}

/**
 * The only code here that knows the write routine (lock, mark stale, update, reload, release):
 * how to write one order through it, and which of its calls mark the steps above. Adapting this
 * writer to another write routine means changing this function and nothing else.
 */
async function writeRoutine(config: Config, steps: WriteSteps): Promise<WriteRoutine> {
  const db = createDb(config);
  const redis = createProducerRedis(config);
  redis.on('error', () => undefined);
  // No offline queue: a command sent before the connection is up fails, so wait for it.
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
  const writer = createOrderWriter(db, redis, config);
  const { cache, locks } = writer;
  const lock = locks.lock.bind(locks);
  locks.lock = async (ids, opts) => {
    const held = await lock(ids, opts);
    if (held.held.length > 0) await steps.locked(held.held);
    return held;
  };
  // After the commit the routine fills what was cached (reading it again first), then publishes:
  // the first of the two is where the reload begins (an order nobody had cached is only published).
  let reloadBegun = false;
  const reloading = async (ids: readonly string[]) => {
    if (reloadBegun) return;
    reloadBegun = true;
    await steps.reloading(ids);
  };
  const fillMany = cache.fillMany.bind(cache);
  cache.fillMany = async (records, epoch) => {
    await reloading(records.map((record) => record.order.id));
    return fillMany(records, epoch);
  };
  const publish = redis.publish.bind(redis) as (channel: string, message: string) => Promise<number>;
  const publisher = Object.assign(Object.create(redis) as typeof redis, {
    publish: async (channel: string, message: string) => {
      await reloading(message.split(',').map((pair) => pair.split(':')[0]!));
      return publish(channel, message);
    },
  });
  const routine = { ...writer, publisher };
  return {
    async write(orderId) {
      reloadBegun = false;
      const result = await transitionOrder(routine, { orderId, to: 'PRICING_FAILED', from: ['PRICING_FAILED'] }, { actor: 'consistency-test', waitMs: config.lockWaitMs });
      return result.kind === 'done' ? result.change.version : undefined;
    },
    async close() {
      redis.disconnect();
      await db.destroy();
    },
  };
}

const config = loadConfig(process.env);
const orderIds = (process.env.ORDER_IDS ?? '').split(',').filter(Boolean);
const once = process.env.ONCE === '1';
const fault = process.env.FAULT ?? 'none';
const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

let goOn: (() => void) | undefined;
process.on('SIGUSR2', () => goOn?.());
let faulted = false;
const strike = async (at: 'pause-before-update' | 'pause-before-reload' | 'crash', ids: readonly string[]) => {
  if (faulted || fault !== at) return;
  faulted = true;
  if (at === 'crash') {
    say({ t: 'crashing', orderId: ids[0] });
    process.kill(process.pid, 'SIGKILL');
    return;
  }
  const released = new Promise<void>((resolve) => (goOn = resolve));
  say({ t: 'holding', orderId: ids[0] });
  await released;
};
const routine = await writeRoutine(config, {
  locked: (ids) => strike('pause-before-update', ids),
  reloading: async (ids) => {
    await strike('pause-before-reload', ids);
    await strike('crash', ids);
  },
});

let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});

say({ t: 'ready' });
const plan = once ? [...orderIds] : undefined;
while (!stopping) {
  const orderId = plan ? plan.shift() : orderIds[Math.floor(Math.random() * orderIds.length)];
  if (orderId === undefined) break;
  try {
    const version = await routine.write(orderId);
    if (version !== undefined) say({ t: 'write', orderId, version, at: Date.now() });
    else say({ t: 'unchanged', orderId, at: Date.now() });
  } catch (error) {
    say({ t: 'error', orderId, message: error instanceof Error ? error.message : String(error), at: Date.now() });
    if (!once) await new Promise((resolve) => setTimeout(resolve, 20)); // Redis or the lock away: pace the retries
  }
}
await routine.close();
