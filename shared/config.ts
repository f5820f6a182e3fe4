/**
 * The one typed, validated, frozen configuration of a Courier process.
 * Only entrypoints call `loadConfig(process.env)`; everything else receives the result.
 */
import { isIP } from 'node:net';

export interface Config {
  /** mysql://user:pass@host:port/db. Default mysql://root@127.0.0.1:3306/courier */
  readonly mysqlUrl: string;
  /** redis://host:port. Default redis://127.0.0.1:6379 */
  readonly redisUrl: string;
  /** HTTP port of the web process. Default 3000 */
  readonly port: number;
  /** Interface the web process binds. Default 0.0.0.0 */
  readonly host: string;
  /** pino level. Default info */
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** json for machines (default), pretty for a person at a terminal (npm start sets it) */
  readonly logFormat: 'json' | 'pretty';
  /** BullMQ key prefix; braces make it a Redis Cluster hash tag. Default {courier} */
  readonly queuePrefix: string;
  /** Node number (0-63) written into every id this process generates. Default: random */
  readonly nodeId: number;
  /** Shard count ids are spread over (1-64). Default 64 */
  readonly shardCount: number;
  /** Knex pool size. Default 10 */
  readonly dbPoolMax: number;
  /** Bound on connecting to MySQL and on one intake write, in ms. Default 2000 */
  readonly dbTimeoutMs: number;
  /**
   * Bound on one MySQL statement of the worker, the notifier and the CLI, in ms: MariaDB stops a
   * statement running (or waiting on a lock) this long, and a connection that has not answered 2 s
   * later is closed (a silent network). Default 10000
   */
  readonly dbStatementTimeoutMs: number;
  /** Bound on one enqueue to Redis, in ms. Default 1000 */
  readonly redisTimeoutMs: number;
  /** Intake micro-batch: flush at this many orders. Default 256 */
  readonly intakeBatchMax: number;
  /** Intake micro-batch: flush after this many ms. Default 2 */
  readonly intakeBatchWaitMs: number;
  /** Intake micro-batch: batches written at once. Default 4 */
  readonly intakeMaxInFlight: number;
  /** Intake: the orders a web process commits within this long ride in one price batch job, in ms. Default 50 */
  readonly priceBatchWaitMs: number;
  /** Intake: orders one price batch job carries at most. Default 500 */
  readonly priceBatchMax: number;
  /** Largest accepted request body, in bytes. Default 65536 */
  readonly bodyLimitBytes: number;
  /** Seconds a resolved API key stays cached in-process (a revoked key or a new rate takes effect within it). Default 30 */
  readonly authCacheTtlSeconds: number;
  /** Requests per second an API client may make (all its API routes together) unless it has its own rate. Default 1000 */
  readonly rateLimitPerSecond: number;
  /** Bound on one rate-limit check in Redis, in ms; past it (or with Redis away) the request is let through. Default 250 */
  readonly rateLimitTimeoutMs: number;
  /** API requests one web process holds at once; past it, 503 OVERLOADED at once. Default 2048 */
  readonly httpMaxInFlight: number;
  /** Orders waiting for a place in an intake batch in one web process; past it, 503 OVERLOADED at once. Default 1024 */
  readonly intakeMaxPending: number;
  /**
   * Bound on one HTTP request in the web process, from its first byte to its answer, in ms (Fastify's
   * requestTimeout, and shared/http/request-deadline.ts). Default 10000, or longer if 2 x DB_TIMEOUT_MS + LOCK_WAIT_MS + 1000
   * is: it must outlast the bounds inside it, so they answer first with their own code.
   */
  readonly requestTimeoutMs: number;
  /** Price batch jobs one worker process runs at once. Default 8 */
  readonly orderWorkerConcurrency: number;
  /** Dispatch runs one worker process runs at once (one per zone at a time; more zones run side by side). */
  readonly dispatchWorkerConcurrency: number;
  /** Batches one dispatch run may commit while its zone has a full batch waiting. */
  readonly dispatchMaxBatchesPerRun: number;
  /** piscina threads for CPU-bound steps (pricing, matching). Default 1 */
  readonly cpuThreads: number;
  /** BullMQ job lock: a job whose worker died is taken over after about this long, in ms. Default 30000 */
  readonly jobLockMs: number;
  /** A read replica for order reads (empty: read the primary). Default empty */
  readonly mysqlReplicaUrl: string;
  /** A client's reads go to the primary for this long after its own write, in ms. Default 5000 */
  readonly readYourWritesMs: number;
  /** on: reads go L1 -> L2 -> MySQL; off: straight to MySQL (for comparison and emergencies). Default on */
  readonly orderCache: 'on' | 'off';
  /**
   * on: a GET /v1/orders/:id (or its /tracking) this process can answer from its own copy is answered before Fastify
   * (shared/http/held-order-reads.ts), with the same answer; off: every read goes through Fastify's
   * route. Default on
   */
  readonly orderReadFastPath: 'on' | 'off';
  /** node-cron schedules (comma-free, ';'-separated) of the warm-up before peaks. Default '30 10 * * *;30 16 * * *' */
  readonly warmupCron: readonly string[];
  /** Warm the cache when a web process starts. Default true */
  readonly warmupOnStart: boolean;
  /** Bound on each part of the tracking view (rider position, ETA), in ms. Default 250 */
  readonly trackingPartTimeoutMs: number;
  /** Key prefix of the order cache and the order locks in Redis. Default courier:cache */
  readonly cachePrefix: string;
  /** How long an order that can still change stays in Redis (L2) after its last fill, in ms. Default 3600000 */
  readonly cacheTtlMs: number;
  /** How long a delivered or cancelled order stays in Redis (L2) after its last fill, in ms. Default 60000 */
  readonly cacheFinalTtlMs: number;
  /** How long an order stays in a process's memory (L1) at most, in ms. Default 1000 */
  readonly l1TtlMs: number;
  /** Orders one process keeps in memory (L1). Default 10000 */
  readonly l1Max: number;
  /** An order's lock expires this long after its last renewal, in ms. Default 5000 */
  readonly lockTtlMs: number;
  /** A writer waits this long for an order's lock, then fails (and retries later), in ms. Default 2000 */
  readonly lockWaitMs: number;
  /**
   * The queue dashboard's operator password (user operator: sees everything, retries, promotes,
   * cleans failed jobs). DASHBOARD_PASSWORD is read as this when DASHBOARD_OPERATOR_PASSWORD is unset.
   * Empty, with no viewer password either: the dashboard is off (404). Default empty
   */
  readonly dashboardOperatorPassword: string;
  /** The queue dashboard's viewer password (user viewer: sees everything, changes nothing). Default empty */
  readonly dashboardViewerPassword: string;
  /** Completed batch jobs kept per queue (for the dashboard and job lookups); 0: removed at once. Default 1000 */
  readonly keepCompletedJobs: number;
  /** Completed batch jobs are kept at most this long, in seconds. Default 3600 */
  readonly keepCompletedSeconds: number;
  /** Watchdog: a worker that starts no job for this long while jobs wait is replaced, in ms. Default 15000 */
  readonly workerWatchdogMs: number;
  /** Orders one dispatch run matches at most. Default 100 */
  readonly dispatchBatchSize: number;
  /** Dispatch window: priced orders of a zone wait at most this long for their batch, in ms. Default 1000 */
  readonly dispatchWindowMs: number;
  /** Riders farther than this from the pickup are not considered, in metres. Default 6000 */
  readonly dispatchRadiusMeters: number;
  /** The notification provider (push/SMS gateway). Default http://127.0.0.1:3100 (the dev provider) */
  readonly notifyProviderUrl: string;
  /** Bound on one call to the provider, in ms. Default 2000 */
  readonly notifyTimeoutMs: number;
  /** Notification batch jobs one notifier process runs at once. Default 8 */
  readonly notifierConcurrency: number;
  /** Messages one call to the provider's batch endpoint carries at most (the provider's limit). Default 100 */
  readonly notifyProviderBatchMax: number;
  /** Circuit breaker: open when this share of recent calls failed, in percent. Default 50 */
  readonly notifyBreakerErrorPercent: number;
  /** Circuit breaker: try again (half-open) after this long, in ms. Default 10000 */
  readonly notifyBreakerResetMs: number;
  /** worker, notifier, scheduler: serve GET /metrics on this port (0: not at all). Default 0 */
  readonly metricsPort: number;
  /** Interface the metrics listener of the worker, notifier and scheduler binds. Default 127.0.0.1 */
  readonly metricsHost: string;
  /** Bound on draining in-flight work at SIGTERM, in ms. Default 10000 */
  readonly shutdownTimeoutMs: number;
  /** node-cron schedules (';'-separated; a 6th leading field is seconds) of compensation runs. Default every 15 s */
  readonly compensateCron: readonly string[];
  /** node-cron schedules of reconciliation runs. Default every 30 s */
  readonly reconcileCron: readonly string[];
  /** Compensation: wait before an order's first re-drive, doubled for each further one, in ms. Default 30000 */
  readonly retryBaseMs: number;
  /** Compensation: longest wait between re-drives, in ms. Default 900000 (15 min) */
  readonly retryMaxMs: number;
  /** Re-drives of a PRICING_FAILED order before it is escalated (CANCELLED). Default 3 */
  readonly pricingAttemptBudget: number;
  /** Re-drives of a DISPATCH_FAILED order before it is escalated (CANCELLED). Default 5 */
  readonly dispatchAttemptBudget: number;
  /** Orders claimed per compensation or reconciliation batch (one transaction, one round trip to Redis). Default 1000 */
  readonly maintenanceBatchSize: number;
  /** Reconciler: a CREATED order this old without a live job is enqueued again, in ms. Default 5000 */
  readonly reconcileCreatedAfterMs: number;
  /** Reconciler: a PRICED order waiting this long gets its zone's dispatch booked again, in ms. Default 60000 */
  readonly reconcileStuckAfterMs: number;
  /** Reconciler: a PENDING notification untouched this long without a live job is enqueued again, in ms. Default 60000 */
  readonly reconcileNotifyAfterMs: number;
  /** Reconciler: provider calls a notification gets before it is left PENDING for an operator. Default 10 */
  readonly notifyAttemptBudget: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly variable: string;

  constructor(
    variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.variable = variable;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function str(env: Env, name: string, fallback: string): string {
  const value = env[name];
  return value === undefined || value === '' ? fallback : value;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) {
    throw new ConfigError(name, `must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  const value = Number(raw.trim());
  if (value < min || value > max) {
    throw new ConfigError(name, `must be an integer between ${min} and ${max}, got ${value}`);
  }
  return value;
}

function url(env: Env, name: string, fallback: string, protocols: readonly string[]): string {
  const raw = str(env, name, fallback);
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be a URL like ${fallback}, got "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  if (!parsed.hostname) throw new ConfigError(name, `has no host: "${raw}"`);
  return raw;
}

function oneOf<T extends string>(env: Env, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = str(env, name, fallback);
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

/** ';'-separated cron specs (a cron spec has no ';'); empty means none. Checked by the scheduler, which names the variable. */
function cronList(env: Env, name: string, fallback: string): readonly string[] {
  const raw = env[name] ?? fallback;
  return Object.freeze(
    raw
      .split(';')
      .map((spec) => spec.trim())
      .filter((spec) => spec.length > 0),
  );
}

/** A host to bind: an IP address or a host name (letters, digits, '-' and '.'). */
function host(env: Env, name: string, fallback: string): string {
  const raw = str(env, name, fallback);
  if (isIP(raw) === 0 && !/^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(raw)) {
    throw new ConfigError(name, `must be an IP address or a host name like ${fallback}, got "${raw}"`);
  }
  return raw;
}

export const DASHBOARD_PASSWORD_MIN_LENGTH = 12;

function secret(env: Env, name: string): string {
  const value = str(env, name, '');
  if (value && value.length < DASHBOARD_PASSWORD_MIN_LENGTH) {
    throw new ConfigError(name, `must be at least ${DASHBOARD_PASSWORD_MIN_LENGTH} characters long (or empty)`);
  }
  return value;
}

/**
 * The web's bound on a whole request must outlast the longest chain of bounds inside it (the key's
 * lookup, then an event's lock wait and write), so those answer first with their own code (503
 * DB_UNAVAILABLE, ORDER_BUSY); the request timeout is the backstop for anything unbounded.
 */
function requestTimeout(env: Env, config: Pick<Config, 'dbTimeoutMs' | 'lockWaitMs'>): number {
  const inner = 2 * config.dbTimeoutMs + config.lockWaitMs;
  const value = int(env, 'REQUEST_TIMEOUT_MS', Math.max(10_000, inner + 1000), 100, 600_000);
  if (value <= inner) {
    throw new ConfigError(
      'REQUEST_TIMEOUT_MS',
      `must be longer than 2 x DB_TIMEOUT_MS + LOCK_WAIT_MS (${inner} ms), the bounds inside a request, got ${value}`,
    );
  }
  return value;
}

/** The dashboard's two passwords; DASHBOARD_PASSWORD, the older name, is the operator's. */
function dashboardPasswords(env: Env): { operator: string; viewer: string } {
  const named = secret(env, 'DASHBOARD_OPERATOR_PASSWORD');
  const older = secret(env, 'DASHBOARD_PASSWORD');
  if (named && older && named !== older) {
    throw new ConfigError('DASHBOARD_PASSWORD', 'is the older name of DASHBOARD_OPERATOR_PASSWORD; set one of them, not two different values');
  }
  const operator = named || older;
  const viewer = secret(env, 'DASHBOARD_VIEWER_PASSWORD');
  if (viewer && viewer === operator) {
    throw new ConfigError('DASHBOARD_VIEWER_PASSWORD', 'must differ from the operator password');
  }
  return { operator, viewer };
}

/** The highest rate a client can be given, in requests per second (RATE_LIMIT_PER_SECOND, client:limit). */
export const MAX_RATE_PER_SECOND = 1_000_000;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306/courier';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** Parses the environment once; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env, overrides: Partial<Config> = {}): Config {
  const mysqlUrl = url(env, 'MYSQL_URL', DEFAULT_MYSQL_URL, ['mysql:', 'mariadb:']);
  if (!new URL(mysqlUrl).pathname.replace(/^\//, '')) {
    throw new ConfigError('MYSQL_URL', `must name a database, like ${DEFAULT_MYSQL_URL}`);
  }
  const queuePrefix = str(env, 'QUEUE_PREFIX', '{courier}');
  if (!/^\{[A-Za-z0-9_-]{1,64}\}$/.test(queuePrefix)) {
    throw new ConfigError('QUEUE_PREFIX', `must be a Redis hash tag like {courier}, got "${queuePrefix}"`);
  }
  const dashboard = dashboardPasswords(env);
  const config: { -readonly [K in keyof Config]: Config[K] } = {
    mysqlUrl,
    redisUrl: url(env, 'REDIS_URL', DEFAULT_REDIS_URL, ['redis:', 'rediss:']),
    port: int(env, 'PORT', 3000, 0, 65535),
    host: str(env, 'HOST', '0.0.0.0'),
    logLevel: oneOf(env, 'LOG_LEVEL', 'info', LOG_LEVELS),
    logFormat: oneOf(env, 'LOG_FORMAT', 'json', ['json', 'pretty'] as const),
    queuePrefix,
    nodeId: int(env, 'NODE_ID', Math.floor(Math.random() * 64), 0, 63),
    shardCount: int(env, 'SHARD_COUNT', 64, 1, 64),
    dbPoolMax: int(env, 'DB_POOL_MAX', 10, 1, 200),
    dbTimeoutMs: int(env, 'DB_TIMEOUT_MS', 2000, 50, 60_000),
    dbStatementTimeoutMs: int(env, 'DB_STATEMENT_TIMEOUT_MS', 10_000, 100, 600_000),
    redisTimeoutMs: int(env, 'REDIS_TIMEOUT_MS', 1000, 50, 60_000),
    intakeBatchMax: int(env, 'INTAKE_BATCH_MAX', 256, 1, 5000),
    intakeBatchWaitMs: int(env, 'INTAKE_BATCH_WAIT_MS', 2, 0, 1000),
    intakeMaxInFlight: int(env, 'INTAKE_MAX_IN_FLIGHT', 4, 1, 64),
    priceBatchWaitMs: int(env, 'PRICE_BATCH_WAIT_MS', 50, 0, 10_000),
    priceBatchMax: int(env, 'PRICE_BATCH_MAX', 500, 1, 5000),
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 65_536, 1024, 10_485_760),
    authCacheTtlSeconds: int(env, 'AUTH_CACHE_TTL_SECONDS', 30, 0, 3600),
    rateLimitPerSecond: int(env, 'RATE_LIMIT_PER_SECOND', 1000, 1, MAX_RATE_PER_SECOND),
    rateLimitTimeoutMs: int(env, 'RATE_LIMIT_TIMEOUT_MS', 250, 5, 10_000),
    httpMaxInFlight: int(env, 'HTTP_MAX_IN_FLIGHT', 2048, 1, 1_000_000),
    intakeMaxPending: int(env, 'INTAKE_MAX_PENDING', 1024, 1, 1_000_000),
    orderWorkerConcurrency: int(env, 'ORDER_WORKER_CONCURRENCY', 8, 1, 1000),
    dispatchWorkerConcurrency: int(env, 'DISPATCH_WORKER_CONCURRENCY', 8, 1, 1000),
    dispatchMaxBatchesPerRun: int(env, 'DISPATCH_MAX_BATCHES_PER_RUN', 10, 1, 1000),
    cpuThreads: int(env, 'CPU_THREADS', 1, 1, 64),
    jobLockMs: int(env, 'JOB_LOCK_MS', 30_000, 500, 600_000),
    mysqlReplicaUrl: env.MYSQL_REPLICA_URL ? url(env, 'MYSQL_REPLICA_URL', '', ['mysql:', 'mariadb:']) : '',
    readYourWritesMs: int(env, 'READ_YOUR_WRITES_MS', 5000, 0, 600_000),
    trackingPartTimeoutMs: int(env, 'TRACKING_PART_TIMEOUT_MS', 250, 10, 60_000),
    orderCache: oneOf(env, 'ORDER_CACHE', 'on', ['on', 'off'] as const),
    orderReadFastPath: oneOf(env, 'ORDER_READ_FAST_PATH', 'on', ['on', 'off'] as const),
    warmupCron: cronList(env, 'WARMUP_CRON', '30 10 * * *;30 16 * * *'),
    warmupOnStart: oneOf(env, 'WARMUP_ON_START', 'true', ['true', 'false'] as const) === 'true',
    cachePrefix: str(env, 'CACHE_PREFIX', 'courier:cache'),
    cacheTtlMs: int(env, 'CACHE_TTL_MS', 3_600_000, 1000, 86_400_000),
    cacheFinalTtlMs: int(env, 'CACHE_FINAL_TTL_MS', 60_000, 1000, 86_400_000),
    l1TtlMs: int(env, 'L1_TTL_MS', 1000, 0, 60_000),
    l1Max: int(env, 'L1_MAX', 10_000, 1, 10_000_000),
    lockTtlMs: int(env, 'LOCK_TTL_MS', 5000, 100, 600_000),
    lockWaitMs: int(env, 'LOCK_WAIT_MS', 2000, 10, 600_000),
    dashboardOperatorPassword: dashboard.operator,
    dashboardViewerPassword: dashboard.viewer,
    keepCompletedJobs: int(env, 'KEEP_COMPLETED_JOBS', 200, 0, 100_000),
    keepCompletedSeconds: int(env, 'KEEP_COMPLETED_SECONDS', 3600, 1, 7 * 24 * 3600),
    workerWatchdogMs: int(env, 'WORKER_WATCHDOG_MS', 15_000, 100, 600_000),
    dispatchBatchSize: int(env, 'DISPATCH_BATCH_SIZE', 100, 1, 1000),
    dispatchWindowMs: int(env, 'DISPATCH_WINDOW_MS', 1000, 10, 60_000),
    dispatchRadiusMeters: int(env, 'DISPATCH_RADIUS_M', 6000, 100, 100_000),
    notifyProviderUrl: url(env, 'NOTIFY_PROVIDER_URL', 'http://127.0.0.1:3100', ['http:', 'https:']),
    notifyTimeoutMs: int(env, 'NOTIFY_TIMEOUT_MS', 2000, 10, 60_000),
    notifierConcurrency: int(env, 'NOTIFIER_CONCURRENCY', 8, 1, 1000),
    notifyProviderBatchMax: int(env, 'NOTIFY_PROVIDER_BATCH_MAX', 100, 1, 1000),
    notifyBreakerErrorPercent: int(env, 'NOTIFY_BREAKER_ERROR_PERCENT', 50, 1, 100),
    notifyBreakerResetMs: int(env, 'NOTIFY_BREAKER_RESET_MS', 10_000, 100, 600_000),
    metricsPort: int(env, 'METRICS_PORT', 0, 0, 65535),
    metricsHost: host(env, 'METRICS_HOST', '127.0.0.1'),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
    compensateCron: cronList(env, 'COMPENSATE_CRON', '*/15 * * * * *'),
    reconcileCron: cronList(env, 'RECONCILE_CRON', '*/30 * * * * *'),
    retryBaseMs: int(env, 'RETRY_BASE_MS', 30_000, 10, 86_400_000),
    retryMaxMs: int(env, 'RETRY_MAX_MS', 900_000, 10, 86_400_000),
    pricingAttemptBudget: int(env, 'PRICING_ATTEMPT_BUDGET', 3, 0, 100),
    dispatchAttemptBudget: int(env, 'DISPATCH_ATTEMPT_BUDGET', 5, 0, 100),
    maintenanceBatchSize: int(env, 'MAINTENANCE_BATCH_SIZE', 1000, 1, 10_000),
    reconcileCreatedAfterMs: int(env, 'RECONCILE_CREATED_AFTER_MS', 5000, 0, 86_400_000),
    reconcileStuckAfterMs: int(env, 'RECONCILE_STUCK_AFTER_MS', 60_000, 0, 86_400_000),
    reconcileNotifyAfterMs: int(env, 'RECONCILE_NOTIFY_AFTER_MS', 60_000, 0, 86_400_000),
    notifyAttemptBudget: int(env, 'NOTIFY_ATTEMPT_BUDGET', 10, 1, 1000),
    requestTimeoutMs: 0, // below: it depends on the bounds inside it
    ...overrides,
  };
  if (overrides.requestTimeoutMs === undefined) config.requestTimeoutMs = requestTimeout(env, config);
  return Object.freeze(config);
}
