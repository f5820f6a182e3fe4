/**
 * The notification provider answered, and refused this message (a 4xx such as a bad recipient):
 * sending it again would be refused again. The provider is healthy, so this does not count
 * against its circuit breaker.
 */
export class ProviderRejectedError extends Error {
  override readonly name = 'ProviderRejectedError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
