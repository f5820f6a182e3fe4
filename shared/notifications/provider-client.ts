import CircuitBreaker from 'opossum';
import { Pool } from 'undici';
import type { Config } from '../config.ts';
import { coerceError, safeErrorMessage } from '../errors/index.ts';
import { maskText } from '../privacy/mask-personal-data.ts';
import type { NotificationKind } from './kinds.ts';

/** One notification as the provider receives it. */
export interface NotificationMessage {
  readonly orderId: string;
  readonly kind: NotificationKind;
  /** A phone number for SMS, or a push channel such as `merchant:1001`. */
  readonly to: string;
  readonly text: string;
}

/** What became of one message of a batch call. */
export type MessageOutcome =
  /** Accepted: `messageId` is the provider's id of the message the person got; `replayed` when the key was seen before (nothing new sent). */
  | { readonly kind: 'sent'; readonly messageId: string; readonly replayed: boolean }
  /** The provider refused this message for good (a 4xx for it): sending it again would be refused again. */
  | { readonly kind: 'refused'; readonly reason: string }
  /** The call or the message failed (a timeout, a 5xx, the network): retry with the same key, safely. */
  | { readonly kind: 'failed'; readonly reason: string }
  /** Not sent: the circuit breaker is open, or the client closed. Nothing reached the provider. */
  | { readonly kind: 'unavailable'; readonly reason: string };

/** What a notification job needs of the provider: tests and other transports can stand in for the HTTP client. */
export interface NotificationBatchSender {
  /** Sends the messages (in calls of at most the provider's batch size); one outcome per message, in order. Never rejects. */
  sendBatch(messages: readonly NotificationMessage[], opts?: { signal?: AbortSignal }): Promise<MessageOutcome[]>;
  /** How long until the breaker lets a call through again (0 when closed). */
  retryAfterMs(): number;
}

export type BreakerState = 'closed' | 'open' | 'halfOpen';

export type ProviderClientConfig = Pick<
  Config,
  'notifyProviderUrl' | 'notifyTimeoutMs' | 'notifyBreakerErrorPercent' | 'notifyBreakerResetMs' | 'notifyProviderBatchMax'
>;

export interface ProviderClientOptions {
  /** Calls the breaker must see in its window before it may open at all. Default 5 */
  readonly volumeThreshold?: number;
  /** Length of the breaker's rolling statistics window, in ms. Default 10000 */
  readonly rollingWindowMs?: number;
  /** Keep-alive connections to the provider at most; the calls one process makes at once. Default 16 */
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
 * A call that answered, but with most of its messages failed: the breaker counts it as a failure,
 * and the caller still gets every message's outcome.
 */
class MostlyFailedCall extends Error {
  readonly outcomes: MessageOutcome[];

  constructor(outcomes: MessageOutcome[]) {
    super('most messages of the call failed');
    this.outcomes = outcomes;
  }
}

/**
 * Sends notifications to the provider's batch endpoint (`POST /v1/messages/batch`, at most
 * notifyProviderBatchMax messages a call, each with its own idempotency key and its own result)
 * over keep-alive connections, each call bounded by notifyTimeoutMs (the request is aborted, not
 * just abandoned), inside a circuit breaker. When enough recent calls failed (a call with most of
 * its messages failed counts as failed) the breaker opens and messages come back 'unavailable' at
 * once, without reaching the provider, until notifyBreakerResetMs has passed; then one trial call
 * goes through (half-open) and its outcome closes or reopens the breaker. One client per process:
 * every job of the process shares its breaker.
 */
export class ProviderClient implements NotificationBatchSender {
  /** Keep-alive connections to the provider; undici's request API, without fetch's web streams and signals per call. */
  private readonly pool: Pool;
  private readonly path: string;
  private readonly breaker: CircuitBreaker<[readonly NotificationMessage[], AbortSignal | undefined], MessageOutcome[]>;
  private readonly listeners = new Set<(state: BreakerState) => void>();
  private readonly config: ProviderClientConfig;
  private openedAt = 0;

  constructor(config: ProviderClientConfig, opts: ProviderClientOptions = {}) {
    this.config = config;
    const base = new URL(config.notifyProviderUrl);
    this.path = `${base.pathname.replace(/\/+$/, '')}/v1/messages/batch`;
    this.pool = new Pool(base.origin, { connections: opts.connections ?? 16, connect: { timeout: config.notifyTimeoutMs } });
    this.breaker = new CircuitBreaker((messages: readonly NotificationMessage[], signal: AbortSignal | undefined) => this.post(messages, signal), {
      name: 'notify-provider',
      // The request aborts itself at notifyTimeoutMs (post()); the breaker's own timer is the same
      // bound, counted as a failure.
      timeout: config.notifyTimeoutMs,
      errorThresholdPercentage: config.notifyBreakerErrorPercent,
      resetTimeout: config.notifyBreakerResetMs,
      volumeThreshold: opts.volumeThreshold ?? 5,
      rollingCountTimeout: opts.rollingWindowMs ?? 10_000,
      // An abort by the caller says nothing about the provider. opossum counts a filtered error as
      // a success, which closes a half-open breaker: a trial call its caller abandoned must not,
      // so there it counts as a failure.
      errorFilter: (error: unknown) => typeof error === 'object' && error !== null && CALLER_ABORTS.has(error) && !this.breaker.halfOpen,
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

  async sendBatch(messages: readonly NotificationMessage[], opts: { signal?: AbortSignal } = {}): Promise<MessageOutcome[]> {
    const size = Math.max(1, this.config.notifyProviderBatchMax);
    const calls: NotificationMessage[][] = [];
    for (let start = 0; start < messages.length; start += size) calls.push(messages.slice(start, start + size));
    return (await Promise.all(calls.map((call) => this.sendCall(call, opts.signal)))).flat();
  }

  /** Stops the breaker's timers and closes the connections; later messages come back 'unavailable'. */
  async close(): Promise<void> {
    this.listeners.clear();
    this.breaker.shutdown();
    await this.pool.destroy().catch(() => undefined);
  }

  private async sendCall(messages: readonly NotificationMessage[], signal: AbortSignal | undefined): Promise<MessageOutcome[]> {
    try {
      return await this.breaker.fire(messages, signal);
    } catch (thrown) {
      if (thrown instanceof MostlyFailedCall) return thrown.outcomes;
      const error = coerceError(thrown);
      const all = (outcome: MessageOutcome) => messages.map(() => outcome);
      // The reason is stored in the ledger (last_error): an error's text there never quotes a statement's values.
      if (!CircuitBreaker.isOurError(error)) return all({ kind: 'failed', reason: safeErrorMessage(error) });
      const code = (error as { code?: unknown }).code;
      if (code === 'ETIMEDOUT') return all({ kind: 'failed', reason: `the notification provider did not answer within ${this.config.notifyTimeoutMs} ms` });
      if (code === 'ESHUTDOWN') return all({ kind: 'unavailable', reason: 'the notification provider client is closed' });
      return all({ kind: 'unavailable', reason: `the notification provider's circuit breaker is open; retry in ${this.retryAfterMs()} ms` });
    }
  }

  private async post(messages: readonly NotificationMessage[], callerSignal: AbortSignal | undefined): Promise<MessageOutcome[]> {
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
    let body: string;
    try {
      if (callerSignal?.aborted) abort.abort();
      const response = await this.pool.request({
        path: this.path,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          messages: messages.map((message) => ({
            idempotencyKey: notificationIdempotencyKey(message.orderId, message.kind),
            orderId: message.orderId,
            kind: message.kind,
            to: message.to,
            text: message.text,
          })),
        }),
        signal: abort.signal,
      });
      statusCode = response.statusCode;
      body = await response.body.text();
    } catch (thrown) {
      throw this.describeFailure(thrown, timedOut, callerSignal);
    } finally {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }

    const detail = `${statusCode}${body ? `: ${body.slice(0, 200)}` : ''}`;
    if (statusCode >= 400 && statusCode < 500 && !RETRYABLE_4XX.has(statusCode)) {
      // The provider refused the call itself: each of its messages is refused.
      return messages.map(() => ({ kind: 'refused', reason: `the notification provider refused the call (${detail})` }));
    }
    if (statusCode < 200 || statusCode >= 300) throw new Error(`the notification provider answered ${detail}`);
    const outcomes = readOutcomes(messages, body);
    const failed = outcomes.filter((outcome) => outcome.kind === 'failed').length;
    if (failed * 2 >= outcomes.length) throw new MostlyFailedCall(outcomes);
    return outcomes;
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
    const cause = (error as { cause?: { code?: unknown } }).cause;
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

/** Each message's outcome from a batch answer `{ results: [{ idempotencyKey, status, id?, duplicate?, message? }] }`. */
function readOutcomes(messages: readonly NotificationMessage[], body: string): MessageOutcome[] {
  let results: unknown;
  try {
    results = (JSON.parse(body) as { results?: unknown }).results;
  } catch {
    results = undefined;
  }
  const byKey = new Map<string, Record<string, unknown>>();
  if (Array.isArray(results)) {
    for (const result of results) {
      if (typeof result === 'object' && result !== null && typeof (result as { idempotencyKey?: unknown }).idempotencyKey === 'string') {
        byKey.set((result as { idempotencyKey: string }).idempotencyKey, result as Record<string, unknown>);
      }
    }
  }
  return messages.map((message): MessageOutcome => {
    const result = byKey.get(notificationIdempotencyKey(message.orderId, message.kind));
    if (!result) return { kind: 'failed', reason: 'the notification provider answered without a result for this message' };
    const status = Number(result.status);
    // The provider's own words go into the ledger: a provider that echoes the recipient ("invalid number +86...") is masked.
    const detail = `${status}${typeof result.message === 'string' ? `: ${maskText(result.message.slice(0, 200))}` : ''}`;
    if (status >= 200 && status < 300 && typeof result.id === 'string' && result.id.length > 0) {
      return { kind: 'sent', messageId: result.id, replayed: result.duplicate === true };
    }
    if (status >= 400 && status < 500 && !RETRYABLE_4XX.has(status)) return { kind: 'refused', reason: `the notification provider refused the message (${detail})` };
    return { kind: 'failed', reason: `the notification provider failed the message (${detail})` };
  });
}
