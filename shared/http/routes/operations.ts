import type { FastifyInstance } from 'fastify';
import type { Db } from '../../db.ts';
import type { Metrics } from '../../metrics.ts';
import type { Redis } from '../../redis.ts';
import { withDeadline } from '../../with-deadline.ts';

export interface OperationsDeps {
  readonly db: Db;
  readonly redis: Redis;
  readonly metrics: Metrics;
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
export async function operationsRoutes(app: FastifyInstance, deps: OperationsDeps): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
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

  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}
