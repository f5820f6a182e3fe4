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
 *     pause-before-update  once the cached entry is marked stale, before the row is updated
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
import { createProducerRedis } from '../../shared/redis.ts';

/** Where a fault can strike inside one write. Each step may hold the write up as long as it likes. */
interface WriteSteps {
  /** The orders' cached entries are marked stale; their rows are not updated yet. */
  staleMarked(orderIds: readonly string[]): Promise<void>;
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
  const cache = writer.cache;
  const invalidate = cache.invalidate.bind(cache);
  const invalidateMany = cache.invalidateMany.bind(cache);
  const fillMany = cache.fillMany.bind(cache);
  cache.invalidate = async (orderId, version) => {
    await invalidate(orderId, version);
    await steps.staleMarked([orderId]);
  };
  cache.invalidateMany = async (orders) => {
    await invalidateMany(orders);
    await steps.staleMarked(orders.map((order) => order.id));
  };
  // The reload is the routine's only fill: it runs after the commit.
  cache.fillMany = async (records, epoch) => {
    await steps.reloading(records.map((record) => record.order.id));
    return fillMany(records, epoch);
  };
  return {
    async write(orderId) {
      const result = await writer.change({ orderId, to: 'PRICING_FAILED', from: ['PRICING_FAILED'], actor: 'consistency-test' });
      return result.kind === 'done' ? result.order.version : undefined;
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
  staleMarked: (ids) => strike('pause-before-update', ids),
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
