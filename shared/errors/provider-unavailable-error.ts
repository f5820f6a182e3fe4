/**
 * The notification provider is not being called right now: its circuit breaker is open (recent
 * calls failed or timed out) or the client was closed. Nothing reached the provider. Retry after
 * retryAfterMs (when the breaker lets a trial call through), not at once.
 */
export class ProviderUnavailableError extends Error {
  override readonly name = 'ProviderUnavailableError';
  readonly retryAfterMs: number;

  constructor(
    retryAfterMs: number,
    message = `the notification provider's circuit breaker is open; retry in ${retryAfterMs} ms`,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.retryAfterMs = retryAfterMs;
  }
}
