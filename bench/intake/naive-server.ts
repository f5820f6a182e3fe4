/**
 * The baseline for the intake bench: POST /v1/orders as someone would first write it.
 * Per request: validate the body (the same TypeBox schema as Courier), one INSERT into `orders`,
 * one `queue.add` on the BullMQ orders queue, then 202 {id, status}.
 *
 * Deliberately naive: no micro-batching, no `order_events` row, no metrics, one round trip to
 * MySQL and one to Redis per order, each awaited before answering.
 *
 * Kept fair where the naive choice would only add unrelated cost:
 * - Auth: the Bearer key is checked with a single cached lookup (SHA-256 of the key, one SELECT on
 *   api_clients the first time a key is seen, then a Map; never expires). Not skipped, so the
 *   naive server does the same kind of work per request as Courier's cached Authenticator.
 * - Merchant: looked up once per merchant id and kept in a Map (the row must give zone_id and the
 *   pickup location). So in the steady state the only SQL per request is the one INSERT.
 * - Same pool (createDb, DB_POOL_MAX default 10), same kind of Redis connection
 *   (createProducerRedis), same queue options (createQueue), same id generator (IdGenerator).
 *
 * Started by bench/intake/main.ts as its own process; env: MYSQL_URL, REDIS_URL, QUEUE_PREFIX, PORT
 * (0 = any free port), HOST, LOG_LEVEL. Prints "listening on http://host:port" when ready and
 * closes cleanly on SIGTERM (bench/lib/serve-until-signal.ts).
 */
import { createHash } from 'node:crypto';
import Fastify, { LogController } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { hashApiKey } from '../../shared/clients/api-keys.ts';
import { loadConfig } from '../../shared/config.ts';
import { createDb } from '../../shared/db.ts';
import { IdGenerator, shardOf } from '../../shared/ids.ts';
import { CreateOrderBody, IDEMPOTENCY_KEY_PATTERN } from '../../shared/orders/create-order-schema.ts';
import { newOrderRow } from '../../shared/orders/insert-orders.ts';
import { createQueue } from '../../shared/queues/create-queue.ts';
import { QUEUE_NAMES } from '../../shared/queues/queue-names.ts';
import { createProducerRedis } from '../../shared/redis.ts';
import { serveUntilSignal } from '../lib/serve-until-signal.ts';

const config = loadConfig(process.env);
const db = createDb(config);
const redis = createProducerRedis(config);
redis.on('error', () => undefined); // a refused command still fails its request
const queue = createQueue(QUEUE_NAMES.orders, { connection: redis, prefix: config.queuePrefix });
queue.on('error', () => undefined);
const ids = new IdGenerator(config.nodeId);

interface Merchant {
  zoneId: string;
  lat: number;
  lng: number;
}
const clientsByKeyHash = new Map<string, string | null>();
const merchantsById = new Map<string, Merchant | null>();

async function clientIdFor(authorization: string | undefined): Promise<string | null> {
  const match = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  if (!match?.[1]) return null;
  const keyHash = hashApiKey(match[1]);
  let clientId = clientsByKeyHash.get(keyHash);
  if (clientId === undefined) {
    const row = await db('api_clients').select('id').where({ key_hash: keyHash }).whereNull('revoked_at').first();
    clientId = row ? String(row.id) : null;
    clientsByKeyHash.set(keyHash, clientId);
  }
  return clientId;
}

async function merchantFor(id: string): Promise<Merchant | null> {
  let merchant = merchantsById.get(id);
  if (merchant === undefined) {
    const row = await db('merchants').select('zone_id', 'lat', 'lng').where({ id }).first();
    merchant = row ? { zoneId: String(row.zone_id), lat: Number(row.lat), lng: Number(row.lng) } : null;
    merchantsById.set(id, merchant);
  }
  return merchant;
}

const app = Fastify({
  logger: { level: config.logLevel },
  logController: new LogController({ disableRequestLogging: true }),
  bodyLimit: config.bodyLimitBytes,
  // As Courier: unknown fields are refused, not dropped; nothing is coerced.
  ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
}).withTypeProvider<TypeBoxTypeProvider>();

app.post('/v1/orders', { schema: { body: CreateOrderBody } }, async (request, reply) => {
  const clientId = await clientIdFor(request.headers.authorization);
  if (!clientId) return reply.code(401).send({ error: 'UNAUTHORIZED' });
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    return reply.code(400).send({ error: 'IDEMPOTENCY_KEY_REQUIRED' });
  }
  const body = request.body;
  const merchant = await merchantFor(body.merchantId);
  if (!merchant) return reply.code(422).send({ error: 'UNKNOWN_MERCHANT' });

  const id = ids.next(shardOf(body.merchantId, config.shardCount));
  try {
    await db('orders').insert(
      newOrderRow({
        id,
        clientId,
        idempotencyKey: key,
        requestHash: createHash('sha256').update(JSON.stringify(body)).digest('hex'),
        merchant: { id: body.merchantId, ...merchant },
        body,
      }),
    );
  } catch (error) {
    if ((error as { errno?: number }).errno === 1062) return reply.code(409).send({ error: 'IDEMPOTENCY_KEY_REUSED' });
    throw error;
  }
  // The naive design: a job per order, as the pipeline before batches had.
  await queue.add('order.price', { orderId: id }, { jobId: `order-${id}` });
  return reply.code(202).send({ id, status: 'CREATED' });
});

await serveUntilSignal(app, {
  name: 'naive-server',
  port: config.port,
  host: config.host,
  close: async () => {
    await queue.close();
    redis.disconnect();
    await db.destroy();
  },
});
