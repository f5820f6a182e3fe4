import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { LRUCache } from 'lru-cache';
import { pino } from 'pino';
import { Type } from 'typebox';
import { ConfigError } from '../config.ts';
import type { Logger } from '../logger.ts';

/**
 * A stand-in for a push/SMS provider, for development and tests: it accepts messages the way real
 * providers do (deduplicating by Idempotency-Key), records them instead of sending them, and can
 * be made slow, flaky or down, at start (env) or at run time (POST /control).
 *
 *   POST /v1/messages  Idempotency-Key: <key>  { orderId, kind, to, text }
 *     -> 200 { id, duplicate: false }                  the first time a key is seen
 *     -> 200 { id, duplicate: true } + Idempotent-Replayed: true   a repeat: the first id, nothing new sent
 *     -> 500 when failing (failRate), 503 when down; 400 without a key or with a bad body
 *   POST /v1/messages/batch  { messages: [{ idempotencyKey, orderId, kind, to, text }] }   (1 to maxBatch messages)
 *     -> 200 { results: [{ idempotencyKey, status: 200, id, duplicate } | { idempotencyKey, status: 500, code, message }] }
 *        one result per message, each deduplicated by its own key; failRate fails messages one by one
 *     -> 503 when down (nothing delivered); 400 with a bad body or more than maxBatch messages
 *   GET  /v1/messages[?orderId=&kind=]  -> { count, messages }   what was delivered, oldest first (the newest 10,000)
 *   GET  /control                        -> { settings, stats }
 *   POST /control { delayMs?, failRate?, down? } -> { settings, stats }
 */
export interface DevProviderSettings {
  /** Every accepted request waits this long before it is handled (a slow provider). */
  readonly delayMs: number;
  /** Share of requests (0-1) answered 500 after the delay, without delivering. */
  readonly failRate: number;
  /** Answer every request 503 at once (the provider is down). */
  readonly down: boolean;
}

export interface DevProviderOptions extends Partial<DevProviderSettings> {
  readonly logger?: Logger;
  /** Idempotency keys remembered; the oldest is forgotten first, as real providers expire keys. Default 100000 */
  readonly maxKeys?: number;
  /** Messages one batch call may carry, as a real provider's limit. Default 100 */
  readonly maxBatch?: number;
}

export interface DevProviderStats {
  /** Requests to POST /v1/messages and /v1/messages/batch (a batch is one request), whatever their answer. */
  readonly requests: number;
  /** Of those, batch calls. */
  readonly batches: number;
  /** Messages delivered: distinct idempotency keys accepted. */
  readonly deliveries: number;
  /** Repeats of a delivered key, answered with the first id and not delivered again. */
  readonly duplicates: number;
  /** Requests answered 500 (failRate) or 503 (down), and batch messages failed by failRate. */
  readonly failures: number;
}

export interface DeliveredMessage {
  readonly id: string;
  readonly idempotencyKey: string;
  readonly orderId: string;
  readonly kind: string;
  readonly to: string;
  readonly text: string;
  readonly deliveredAt: string;
}

const MessageBody = Type.Object(
  {
    orderId: Type.String({ minLength: 1, maxLength: 32 }),
    kind: Type.String({ minLength: 1, maxLength: 40 }),
    to: Type.String({ minLength: 1, maxLength: 64 }),
    text: Type.String({ minLength: 1, maxLength: 1000 }),
  },
  { additionalProperties: false },
);
const BatchBody = Type.Object(
  { messages: Type.Array(Type.Object({ idempotencyKey: Type.String({ minLength: 1, maxLength: 255 }), ...MessageBody.properties }, { additionalProperties: false }), { minItems: 1 }) },
  { additionalProperties: false },
);
const MessageHeaders = Type.Object({ 'idempotency-key': Type.Optional(Type.String()) });
const MessageQuery = Type.Object(
  { orderId: Type.Optional(Type.String()), kind: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
const ControlBody = Type.Object(
  {
    delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000 })),
    failRate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    down: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** Messages listed by GET /v1/messages at most (the newest). */
const LISTED_MAX = 10_000;

export function buildDevProvider(opts: DevProviderOptions = {}): FastifyInstance {
  const logger = opts.logger ?? pino({ level: 'silent' });
  let settings: DevProviderSettings = { delayMs: opts.delayMs ?? 0, failRate: opts.failRate ?? 0, down: opts.down ?? false };
  const stats = { requests: 0, batches: 0, deliveries: 0, duplicates: 0, failures: 0 };
  const maxBatch = opts.maxBatch ?? 100;
  const byKey = new LRUCache<string, DeliveredMessage>({ max: opts.maxKeys ?? 100_000 });
  const delivered: DeliveredMessage[] = [];
  // Slow requests still sleeping when the app closes are let go at once.
  const closing = new AbortController();

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.addHook('preClose', async () => closing.abort());

  const view = () => ({ settings, stats: { ...stats } satisfies DevProviderStats });

  app.post('/v1/messages', { schema: { body: MessageBody, headers: MessageHeaders } }, async (request, reply) => {
    stats.requests++;
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string' || key.length === 0 || key.length > 255) {
      return reply.code(400).send({ code: 'IDEMPOTENCY_KEY_REQUIRED', message: 'Send an Idempotency-Key header of 1-255 characters' });
    }
    const current = settings;
    if (current.down) {
      stats.failures++;
      return reply.code(503).send({ code: 'PROVIDER_DOWN', message: 'The provider is down' });
    }
    if (current.delayMs > 0) {
      try {
        await sleep(current.delayMs, undefined, { signal: closing.signal });
      } catch {
        return reply.code(503).send({ code: 'PROVIDER_DOWN', message: 'The provider is shutting down' });
      }
    }
    if (current.failRate > 0 && Math.random() < current.failRate) {
      stats.failures++;
      return reply.code(500).send({ code: 'PROVIDER_ERROR', message: 'The provider failed (simulated)' });
    }
    const { message, duplicate } = deliver(key, request.body);
    if (duplicate) reply.header('idempotent-replayed', 'true');
    return { id: message.id, duplicate };
  });

  app.post('/v1/messages/batch', { schema: { body: BatchBody } }, async (request, reply) => {
    stats.requests++;
    stats.batches++;
    const { messages } = request.body;
    if (messages.length > maxBatch) {
      return reply.code(400).send({ code: 'BATCH_TOO_LARGE', message: `A batch carries at most ${maxBatch} messages, got ${messages.length}` });
    }
    const current = settings;
    if (current.down) {
      stats.failures++;
      return reply.code(503).send({ code: 'PROVIDER_DOWN', message: 'The provider is down' });
    }
    if (current.delayMs > 0) {
      try {
        await sleep(current.delayMs, undefined, { signal: closing.signal });
      } catch {
        return reply.code(503).send({ code: 'PROVIDER_DOWN', message: 'The provider is shutting down' });
      }
    }
    const results = messages.map(({ idempotencyKey, ...body }) => {
      if (current.failRate > 0 && Math.random() < current.failRate) {
        stats.failures++;
        return { idempotencyKey, status: 500, code: 'PROVIDER_ERROR', message: 'The provider failed this message (simulated)' };
      }
      const { message, duplicate } = deliver(idempotencyKey, body);
      return { idempotencyKey, status: 200, id: message.id, duplicate };
    });
    const sent = results.filter((result) => result.status === 200).length;
    logger.info({ messages: messages.length, sent, failed: messages.length - sent }, `batch of ${messages.length}: ${sent} delivered or repeated`);
    return { results };
  });

  /** Synchronous from the key's lookup to its record, so two requests with one key cannot both deliver. */
  function deliver(key: string, body: { orderId: string; kind: string; to: string; text: string }): { message: DeliveredMessage; duplicate: boolean } {
    const first = byKey.get(key);
    if (first) {
      stats.duplicates++;
      return { message: first, duplicate: true };
    }
    const message: DeliveredMessage = { id: `msg_${randomUUID()}`, idempotencyKey: key, ...body, deliveredAt: new Date().toISOString() };
    byKey.set(key, message);
    delivered.push(message);
    if (delivered.length > LISTED_MAX) delivered.shift();
    stats.deliveries++;
    logger.debug({ to: message.to, kind: message.kind, orderId: message.orderId, id: message.id }, `delivered: ${message.text}`);
    return { message, duplicate: false };
  }

  app.get('/v1/messages', { schema: { querystring: MessageQuery } }, async (request) => {
    const { orderId, kind } = request.query;
    const messages = delivered.filter((m) => (orderId === undefined || m.orderId === orderId) && (kind === undefined || m.kind === kind));
    return { count: messages.length, messages };
  });

  app.get('/control', async () => view());

  app.post('/control', { schema: { body: ControlBody } }, async (request) => {
    settings = { ...settings, ...request.body };
    logger.info({ settings }, 'dev provider settings changed');
    return view();
  });

  return app;
}

/** The dev provider's port and start-up settings from its environment; a bad value throws ConfigError. */
export function devProviderOptionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): DevProviderSettings & { readonly port: number } {
  const int = (name: string, fallback: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d+$/.test(raw.trim()) || Number(raw) > max) {
      throw new ConfigError(name, `must be an integer between 0 and ${max}, got "${raw}"`);
    }
    return Number(raw);
  };
  const rawRate = env.NOTIFY_PROVIDER_FAIL_RATE;
  const failRate = rawRate === undefined || rawRate === '' ? 0 : Number(rawRate);
  if (!Number.isFinite(failRate) || failRate < 0 || failRate > 1) {
    throw new ConfigError('NOTIFY_PROVIDER_FAIL_RATE', `must be a number between 0 and 1, got "${rawRate}"`);
  }
  const rawDown = env.NOTIFY_PROVIDER_DOWN ?? '';
  if (!['', '0', '1', 'true', 'false'].includes(rawDown)) {
    throw new ConfigError('NOTIFY_PROVIDER_DOWN', `must be 1 or 0, got "${rawDown}"`);
  }
  return {
    port: int('NOTIFY_PROVIDER_PORT', 3100, 65535),
    delayMs: int('NOTIFY_PROVIDER_DELAY_MS', 0, 600_000),
    failRate,
    down: rawDown === '1' || rawDown === 'true',
  };
}
