import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import type { Authenticator } from '../clients/authenticator.ts';
import type { LastUsedRecorder } from '../clients/last-used.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db.ts';
import type { Logger } from '../logger.ts';
import type { EdgeMetrics } from '../metrics/edge-metrics.ts';
import type { HttpMetrics } from '../metrics/http-metrics.ts';
import type { ProcessMetrics } from '../metrics/process-metrics.ts';
import type { OrderIntake } from '../orders/order-intake.ts';
import type { OrderWriterDeps } from '../orders/write-orders.ts';
import type { OrderReader } from '../cache/order-reader.ts';
import type { RecentWriters } from './recent-writers.ts';
import { mysqlTrackingParts, type TrackingParts } from '../orders/tracking.ts';
import type { Redis } from '../redis.ts';
import { registerApiDocs } from './api-docs.ts';
import { authenticateRequest } from './authenticate.ts';
import { registerDashboard, type DescribeJob } from './dashboard.ts';
import { ApiError } from '../errors/index.ts';
import { handleError, installErrorHandling, sendError } from './error-handler.ts';
import { answeringHeldReads, type HeldOrderReadsDeps } from './held-order-reads.ts';
import { createHttpServer } from './http-server.ts';
import { InFlightGate } from './in-flight.ts';
import { lazyRequestLogger } from './lazy-request-logger.ts';
import { OrderAnswers } from './order-answers.ts';
import { ClientRateLimit } from './rate-limit.ts';
import { RequestDeadlines } from './request-deadline.ts';
import { REQUEST_ID_HEADER, requestIdOf } from './request-id.ts';
import { installRequestMetrics, routeTimers } from './request-metrics.ts';
import { operationsRoutes } from './routes/operations.ts';
import { ORDER_READ_ROUTE, ORDER_TRACKING_ROUTE, orderRoutes } from './routes/orders.ts';

export interface AppDeps {
  readonly config: Pick<
    Config,
    | 'bodyLimitBytes'
    | 'dbTimeoutMs'
    | 'redisTimeoutMs'
    | 'dashboardOperatorPassword'
    | 'dashboardViewerPassword'
    | 'trackingPartTimeoutMs'
    | 'lockWaitMs'
    | 'requestTimeoutMs'
    | 'httpMaxInFlight'
    | 'intakeMaxPending'
    | 'rateLimitPerSecond'
    | 'cachePrefix'
    | 'l1TtlMs'
    | 'l1Max'
    | 'orderReadFastPath'
  >;
  /** The tracking view's parts; default: read from MySQL. */
  readonly tracking?: TrackingParts;
  readonly db: Db;
  readonly redis: Redis;
  readonly logger: Logger;
  readonly metrics: ProcessMetrics & HttpMetrics;
  /** The web process's own metrics (bounds, shedding, rate limits), on the same registry. */
  readonly edgeMetrics: EdgeMetrics;
  /** The rate limiter's own Redis connection (its command timeout is RATE_LIMIT_TIMEOUT_MS). */
  readonly rateLimitRedis: Redis;
  /** Notes which keys were used (written once a minute). */
  readonly lastUsed?: LastUsedRecorder;
  /** The version the API document states. */
  readonly version?: string;
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

/**
 * Builds the web process's Fastify instance; the entrypoint only listens. Each API request passes,
 * in order: the in-flight bound (503 OVERLOADED), the key (401), the client's rate (429), the
 * body's schema (400), then its route, all within REQUEST_TIMEOUT_MS.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const edge = deps.edgeMetrics;
  const gate = new InFlightGate(config.httpMaxInFlight, () => edge.shed.inc({ bound: 'in_flight' }));
  const rateLimit = new ClientRateLimit({
    redis: deps.rateLimitRedis,
    defaultPerSecond: config.rateLimitPerSecond,
    keyPrefix: `${config.cachePrefix}:ratelimit:`,
    onLimited: () => edge.rateLimited.inc(),
    onFailOpen: () => edge.rateLimitFailOpen.inc(),
  });
  const answers = new OrderAnswers();
  const tracking = deps.tracking ?? mysqlTrackingParts(deps.db, { riderTtlMs: config.l1TtlMs, max: config.l1Max });
  // Draining (close() began): a request on a connection still open is refused (Fastify closes the
  // connection after it), so the client retries on another instance.
  let draining = false;
  const heldReads: HeldOrderReadsDeps | undefined =
    config.orderReadFastPath === 'on'
      ? {
          authenticator: deps.authenticator,
          lastUsed: deps.lastUsed,
          rateLimit,
          gate,
          reader: deps.reader,
          answers,
          tracking,
          isDraining: () => draining,
          timerOf: routeTimers(deps.metrics.httpRequestSeconds, ORDER_READ_ROUTE),
          trackingTimerOf: routeTimers(deps.metrics.httpRequestSeconds, ORDER_TRACKING_ROUTE),
          logger: deps.logger,
        }
      : undefined;

  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request info logs would cost more than the intake itself at peak; errors are still logged,
    // each line with its request's id (X-Request-Id when good, else a new one).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: config.bodyLimitBytes,
    // A request that reaches a draining instance is answered below, in the contract's shape
    // (Fastify's own 503 has no code).
    return503OnClosing: false,
    frameworkErrors: handleError,
    // verbose: a validation error comes with its schema, whose bounds and allowed values the message names.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false, verbose: true } },
    genReqId: requestIdOf,
    requestIdHeader: false,
    // The socket's bound (receiving the request, Node's check); the application's (routing to answer) is below.
    requestTimeout: config.requestTimeoutMs,
    // ORDER_READ_FAST_PATH: the reads this process can answer from what it holds, before Fastify.
    serverFactory: heldReads ? (handler, options) => createHttpServer(options, answeringHeldReads(heldReads, handler)) : undefined,
  });
  // First, so that every route added after it is timed.
  const observeUnmatched = installRequestMetrics(app, deps.metrics.httpRequestSeconds, deps.metrics.httpErrors);
  installErrorHandling(app);
  const deadlines = new RequestDeadlines(app, config.requestTimeoutMs);

  app.addHook('preClose', async () => {
    draining = true;
  });
  // What every request gets first and last, in one callback hook each rather than a hook per
  // concern (each is one more call through Fastify's runner on every request, and a promise each
  // for an async one): its deadline, its id in the answer, the draining check; the deadline's end
  // and the timing of a request no route matched (each route times its own).
  app.addHook('onRequest', (request, reply, done) => {
    deadlines.start(reply);
    reply.header(REQUEST_ID_HEADER, request.id);
    if (draining) sendError(reply, new ApiError('SHUTTING_DOWN'));
    else done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    deadlines.finish(reply);
    if (request.is404) observeUnmatched(request, reply, done);
    else done();
  });
  await registerApiDocs(app, deps.version ?? '0.0.0');

  await app.register(operationsRoutes, {
    db: deps.db,
    redis: deps.redis,
    metrics: deps.metrics,
    timeoutMs: config.dbTimeoutMs,
    isShuttingDown: deps.isShuttingDown ?? (() => false),
  });
  await registerDashboard(app, deps.queues, {
    passwords: { operator: deps.config.dashboardOperatorPassword, viewer: deps.config.dashboardViewerPassword },
    describeJob: deps.describeJob,
    logger: deps.logger,
  });

  edge.track({
    inFlight: () => gate.size,
    inFlightMax: gate.max,
    intakePending: () => deps.intake.pending,
    intakePendingMax: config.intakeMaxPending,
  });

  await app.register(async (api) => {
    // A body that is not JSON is refused by its content type, text/plain included (UNSUPPORTED_CONTENT_TYPE).
    api.removeContentTypeParser('text/plain');
    api.decorateRequest('client', null);
    api.decorateRequest('inFlight', false);
    api.addHook('onRequest', gate.admit);
    api.addHook('onResponse', gate.release);
    api.addHook('onRequest', authenticateRequest(deps.authenticator, config.dbTimeoutMs, deps.lastUsed));
    rateLimit.register(api);
    await api.register(orderRoutes, {
      db: deps.db,
      intake: deps.intake,
      writer: deps.writer,
      lockWaitMs: config.lockWaitMs,
      reader: deps.reader,
      recentWriters: deps.recentWriters,
      answers,
      tracking,
      trackingPartTimeoutMs: config.trackingPartTimeoutMs,
      dbTimeoutMs: config.dbTimeoutMs,
    });
  });

  return app;
}
