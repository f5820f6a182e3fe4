import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import type { Authenticator } from '../clients/authenticator.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { OrderIntake } from '../orders/order-intake.ts';
import type { OrderWriterDeps } from '../orders/write-orders.ts';
import type { OrderReader } from '../cache/order-reader.ts';
import type { RecentWriters } from './recent-writers.ts';
import { mysqlTrackingParts, type TrackingParts } from '../orders/tracking.ts';
import type { Redis } from '../redis.ts';
import { authenticateRequest } from './authenticate.ts';
import { registerDashboard, type DescribeJob } from './dashboard.ts';
import { ApiError } from '../errors/index.ts';
import { handleError, installErrorHandling, sendError } from './error-handler.ts';
import { operationsRoutes } from './routes/operations.ts';
import { orderRoutes } from './routes/orders.ts';

export interface AppDeps {
  readonly config: Pick<Config, 'bodyLimitBytes' | 'dbTimeoutMs' | 'redisTimeoutMs' | 'dashboardOperatorPassword' | 'dashboardViewerPassword' | 'trackingPartTimeoutMs' | 'lockWaitMs'>;
  /** The tracking view's parts; default: read from MySQL. */
  readonly tracking?: TrackingParts;
  readonly db: Db;
  readonly redis: Redis;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly intake: OrderIntake;
  /** The write routine's parts (order events go through it). */
  readonly writer: OrderWriterDeps;
  readonly reader: OrderReader;
  readonly recentWriters: RecentWriters;
  readonly authenticator: Authenticator;
  /** Queues shown on the dashboard. */
  readonly queues: readonly Queue[];
  /** What a job carried, for its title on the dashboard (from the table of job types). */
  readonly describeJob?: DescribeJob;
  readonly isShuttingDown?: () => boolean;
}

/** Builds the web process's Fastify instance; the entrypoint only listens. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request info logs would cost more than the intake itself at peak; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.bodyLimitBytes,
    // A request that reaches a draining instance is answered below, in the contract's shape
    // (Fastify's own 503 has no code).
    return503OnClosing: false,
    frameworkErrors: handleError,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  installErrorHandling(app);

  // Draining (close() began): a request on a connection still open is refused (Fastify closes the
  // connection after it), so the client retries on another instance.
  let draining = false;
  app.addHook('preClose', async () => {
    draining = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (draining) return sendError(reply, new ApiError('SHUTTING_DOWN'));
  });

  app.addHook('onResponse', async (request, reply) => {
    deps.metrics.httpRequestSeconds.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(operationsRoutes, {
    db: deps.db,
    redis: deps.redis,
    metrics: deps.metrics,
    timeoutMs: deps.config.dbTimeoutMs,
    isShuttingDown: deps.isShuttingDown ?? (() => false),
  });
  await registerDashboard(app, deps.queues, {
    passwords: { operator: deps.config.dashboardOperatorPassword, viewer: deps.config.dashboardViewerPassword },
    describeJob: deps.describeJob,
    logger: deps.logger,
  });

  await app.register(async (api) => {
    api.decorateRequest('client', null);
    api.addHook('onRequest', authenticateRequest(deps.authenticator, deps.config.dbTimeoutMs));
    await api.register(orderRoutes, {
      db: deps.db,
      intake: deps.intake,
      writer: deps.writer,
      lockWaitMs: deps.config.lockWaitMs,
      reader: deps.reader,
      recentWriters: deps.recentWriters,
      tracking: deps.tracking ?? mysqlTrackingParts(deps.db),
      trackingPartTimeoutMs: deps.config.trackingPartTimeoutMs,
      dbTimeoutMs: deps.config.dbTimeoutMs,
    });
  });

  return app;
}
