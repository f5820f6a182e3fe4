import CircuitBreaker from 'opossum';
import { Pool } from 'undici';
import type { Config } from '../config.ts';
import { ProviderRejectedError, ProviderUnavailableError, coerceError } from '../errors/index.ts';
import type { NotificationKind } from '../queues/payloads.ts';

/** One notification as the provider receives it. */
export interface NotificationMessage {
  readonly orderId: string;
  readonly kind: NotificationKind;
  /** A phone number for SMS, or a push channel such as `merchant:1001`. */
  readonly to: string;
  readonly text: string;
}

export interface ProviderReceipt {
  /** The provider's id of the message the person got. */
  readonly messageId: string;
  /** The provider already had this idempotency key: it answered with the first message and sent nothing new. */
  readonly replayed: boolean;
}

/** What a job needs of the provider: tests and other transports can stand in for the HTTP client. */
export interface NotificationSender {
  send(message: NotificationMessage, opts?: { signal?: AbortSignal }): Promise<ProviderReceipt>;
}

export type BreakerState = 'closed' | 'open' | 'halfOpen';

export type ProviderClientConfig = Pick<
  Config,
  'notifyProviderUrl' | 'notifyTimeoutMs' | 'notifyBreakerErrorPercent' | 'notifyBreakerResetMs'
>;

export interface ProviderClientOptions {
  /** Calls the breaker must see in its window before it may open at all. Default 5 */
  readonly volumeThreshold?: number;
  /** Length of the breaker's rolling statistics window, in ms. Default 10000 */
  readonly rollingWindowMs?: number;
  /** Keep-alive connections to the provider at most; the calls one process makes at once. Default 64 */
  readonly connections?: number;
}

/**
 * The key the provider deduplicates on: one per (order, kind), the same on every attempt, so a
 * retry of a call whose answer was lost (a timeout, a crash before the ledger was marked) is
 * dropped by the provider instead of notifying the person twice.
 */
export function notificationIdempotencyKey(orderId: string, kind: NotificationKind): string {
  return `${orderId}:${kind}`;
}

/** Statuses that say "not now" rather than "never": retried like a 5xx. */
const RETRYABLE_4XX = new Set([408, 409, 425, 429]);

/** Failures that are not the provider's fault (the caller gave up): they never trip the breaker. */
const CALLER_ABORTS = new WeakSet<object>();

/**
 * Sends notifications to the provider over HTTP (keep-alive connections): one POST per message with an Idempotency-Key,
 * bounded by notifyTimeoutMs (the request is aborted, not just abandoned), inside a circuit
 * breaker. When enough recent calls failed the breaker opens and calls fail at once with
 * ProviderUnavailableError, without reaching the provider, until notifyBreakerResetMs has passed;
 * then one trial call goes through (half-open) and its outcome closes or reopens the breaker.
 * One client per process: every job of the process shares its breaker.
 */
export class ProviderClient implements NotificationSender {
  /** Keep-alive connections to the provider; undici's request API, without fetch's web streams and signals per call. */
  private readonly pool: Pool;
  private readonly path: string;
  private readonly breaker: CircuitBreaker<[NotificationMessage, AbortSignal | undefined], ProviderReceipt>;
  private readonly listeners = new Set<(state: BreakerState) => void>();
  private openedAt = 0;

  private readonly config: ProviderClientConfig;

  constructor(
    config: ProviderClientConfig,
    opts: ProviderClientOptions = {},
  ) {
    this.config = config;
    const base = new URL(config.notifyProviderUrl);
    this.path = `${base.pathname.replace(/\/+$/, '')}/v1/messages`;
    this.pool = new Pool(base.origin, {
      // One per call in flight: a call never waits for a free connection.
      connections: opts.connections ?? 64,
      connect: { timeout: config.notifyTimeoutMs },
    });
    this.breaker = new CircuitBreaker((message: NotificationMessage, signal: AbortSignal | undefined) => this.post(message, signal), {
      name: 'notify-provider',
      // The request aborts itself at notifyTimeoutMs (post()); the breaker's own timer is the same
      // bound, counted as a failure.
      timeout: config.notifyTimeoutMs,
      errorThresholdPercentage: config.notifyBreakerErrorPercent,
      resetTimeout: config.notifyBreakerResetMs,
      volumeThreshold: opts.volumeThreshold ?? 5,
      rollingCountTimeout: opts.rollingWindowMs ?? 10_000,
      // A refusal (4xx) means the provider is up, and an abort by the caller says nothing about it.
      // opossum counts a filtered error as a success, which closes a half-open breaker: a trial
      // call its caller abandoned must not, so there it counts as a failure.
      errorFilter: (error: unknown) =>
        error instanceof ProviderRejectedError ||
        (typeof error === 'object' && error !== null && CALLER_ABORTS.has(error) && !this.breaker.halfOpen),
    });
    this.breaker.on('open', () => {
      this.openedAt = Date.now();
      this.emitState('open');
    });
    this.breaker.on('halfOpen', () => this.emitState('halfOpen'));
    this.breaker.on('close', () => this.emitState('closed'));
  }

  /** closed: calls go through; open: calls fail fast; halfOpen: the next call is a trial. */
  get state(): BreakerState {
    if (this.breaker.opened) return 'open';
    if (this.breaker.halfOpen) return 'halfOpen';
    return 'closed';
  }

  /** Counts over the breaker's rolling window, for metrics and logs. */
  get stats(): { fires: number; successes: number; failures: number; timeouts: number; rejects: number } {
    const { fires, successes, failures, timeouts, rejects } = this.breaker.stats;
    return { fires, successes, failures, timeouts, rejects };
  }

  /** How long until the breaker lets a call through again (0 when closed). */
  retryAfterMs(): number {
    if (this.breaker.opened) return Math.max(0, this.openedAt + this.config.notifyBreakerResetMs - Date.now());
    // Half-open: a trial call is in flight and settles within the timeout.
    if (this.breaker.halfOpen) return this.config.notifyTimeoutMs;
    return 0;
  }

  /** Called on every breaker transition; a listener that throws is ignored. Returns an unsubscribe. */
  onStateChange(listener: (state: BreakerState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Sends one message. Rejects with ProviderUnavailableError when the breaker is open (nothing was
   * sent), ProviderRejectedError when the provider refused the message (do not retry), or an
   * Error for a timeout, a 5xx or a network failure (retry with the same key: safe).
   */
  async send(message: NotificationMessage, opts: { signal?: AbortSignal } = {}): Promise<ProviderReceipt> {
    try {
      return await this.breaker.fire(message, opts.signal);
    } catch (thrown) {
      const error = coerceError(thrown);
      if (!CircuitBreaker.isOurError(error)) throw error;
      const code = (error as { code?: unknown }).code;
      if (code === 'ETIMEDOUT') {
        throw new Error(`the notification provider did not answer within ${this.config.notifyTimeoutMs} ms`, { cause: error });
      }
      if (code === 'ESHUTDOWN') {
        throw new ProviderUnavailableError(0, 'the notification provider client is closed', { cause: error });
      }
      throw new ProviderUnavailableError(this.retryAfterMs(), undefined, { cause: error });
    }
  }

  /** Stops the breaker's timers and closes the connections; later calls fail with ProviderUnavailableError. */
  async close(): Promise<void> {
    this.listeners.clear();
    this.breaker.shutdown();
    await this.pool.destroy().catch(() => undefined);
  }

  private async post(message: NotificationMessage, callerSignal: AbortSignal | undefined): Promise<ProviderReceipt> {
    // One controller and one timer per call: the request is aborted at notifyTimeoutMs, from
    // connecting to the last byte (not just abandoned), or when the caller gives up.
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.config.notifyTimeoutMs);
    const onCallerAbort = () => abort.abort();
    callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    let statusCode: number;
    let replayed: boolean;
    let body: string;
    try {
      if (callerSignal?.aborted) abort.abort();
      const response = await this.pool.request({
        path: this.path,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': notificationIdempotencyKey(message.orderId, message.kind),
        },
        body: JSON.stringify({ orderId: message.orderId, kind: message.kind, to: message.to, text: message.text }),
        signal: abort.signal,
      });
      statusCode = response.statusCode;
      replayed = response.headers['idempotent-replayed'] === 'true';
      body = await response.body.text();
    } catch (thrown) {
      throw this.describeFailure(thrown, timedOut, callerSignal);
    } finally {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }

    if (statusCode >= 200 && statusCode < 300) {
      const messageId = parseMessageId(body);
      if (!messageId) throw new Error(`the notification provider answered ${statusCode} without a message id`);
      return { messageId, replayed };
    }
    const detail = `${statusCode}${body ? `: ${body.slice(0, 200)}` : ''}`;
    if (statusCode >= 400 && statusCode < 500 && !RETRYABLE_4XX.has(statusCode)) {
      throw new ProviderRejectedError(statusCode, `the notification provider refused the message (${detail})`);
    }
    throw new Error(`the notification provider answered ${detail}`);
  }

  private describeFailure(thrown: unknown, timedOut: boolean, callerSignal: AbortSignal | undefined): Error {
    if (callerSignal?.aborted && !timedOut) {
      const error = new Error('the notification was abandoned by its caller', { cause: callerSignal.reason });
      CALLER_ABORTS.add(error);
      return error;
    }
    const error = coerceError(thrown);
    const code = (error as { code?: unknown }).code;
    if (timedOut || code === 'UND_ERR_CONNECT_TIMEOUT') {
      return new Error(`the notification provider did not answer within ${this.config.notifyTimeoutMs} ms`, { cause: error });
    }
    const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
    const reason = typeof code === 'string' ? code : typeof cause?.code === 'string' ? cause.code : error.message;
    return new Error(`could not reach the notification provider: ${reason}`, { cause: error });
  }

  private emitState(state: BreakerState): void {
    for (const listener of this.listeners) {
      try {
        listener(state);
      } catch {
        // A listener that throws must not break the breaker.
      }
    }
  }
}

function parseMessageId(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    const id = typeof parsed === 'object' && parsed !== null ? (parsed as { id?: unknown }).id : undefined;
    return typeof id === 'string' && id.length > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}
