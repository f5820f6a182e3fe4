import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { Db } from '../../db.ts';
import type { ProcessMetrics } from '../../metrics/process-metrics.ts';
import type { Redis } from '../../redis.ts';
import { withDeadline } from '../../with-deadline.ts';

export interface OperationsDeps {
  readonly db: Db;
  readonly redis: Redis;
  readonly metrics: ProcessMetrics;
  readonly timeoutMs: number;
  readonly isShuttingDown: () => boolean;
}

async function probe(check: () => Promise<unknown>, timeoutMs: number): Promise<'up' | 'down'> {
  try {
    await withDeadline(check(), timeoutMs);
    return 'up';
  } catch {
    return 'down';
  }
}

/**
 * /healthz: the process is alive. /readyz: it can take orders, which needs MySQL only (with Redis
 * away orders still commit and wait in the outbox), so Redis being down is reported, not fatal.
 */
const Probe = Type.Enum(['up', 'down']);
const ProbeFailure = Type.Object(
  { code: Type.Enum(['SHUTTING_DOWN', 'DB_UNAVAILABLE']), message: Type.String(), mysql: Probe, redis: Probe },
  { description: 'Not ready: draining (SHUTTING_DOWN) or MySQL down (DB_UNAVAILABLE)' },
);

const HEALTHZ_SCHEMA = {
  tags: ['operations'],
  summary: 'Liveness: the process answers',
  response: { 200: Type.Object({ status: Type.Literal('ok') }, { description: 'Alive' }) },
};

const READYZ_SCHEMA = {
  tags: ['operations'],
  summary: 'Readiness: MySQL answers (Redis away is reported, not fatal: orders are still taken)',
  response: {
    200: Type.Object({ status: Type.Enum(['ready', 'degraded']), mysql: Probe, redis: Probe }, { description: 'Ready (degraded: Redis is away)' }),
    503: ProbeFailure,
  },
};

const METRICS_SCHEMA = {
  tags: ['operations'],
  summary: "The web process's metrics, in Prometheus text format",
  response: { 200: { description: 'Prometheus exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } },
};

export async function operationsRoutes(app: FastifyInstance, deps: OperationsDeps): Promise<void> {
  app.get('/healthz', { schema: HEALTHZ_SCHEMA }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: READYZ_SCHEMA }, async (_request, reply) => {
    const [mysql, redis] = await Promise.all([
      probe(() => deps.db.raw('SELECT 1'), deps.timeoutMs),
      probe(() => deps.redis.ping(), deps.timeoutMs),
    ]);
    if (deps.isShuttingDown()) {
      return reply.code(503).send({ code: 'SHUTTING_DOWN', message: 'This instance is shutting down', mysql, redis });
    }
    if (mysql === 'down') {
      return reply.code(503).send({ code: 'DB_UNAVAILABLE', message: 'MySQL is not answering', mysql, redis });
    }
    return { status: redis === 'up' ? 'ready' : 'degraded', mysql, redis };
  });

  app.get('/metrics', { schema: METRICS_SCHEMA }, async (_request, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}
