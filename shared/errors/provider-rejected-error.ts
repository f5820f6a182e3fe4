/**
 * The notification provider answered, and refused this message (a 4xx such as a bad recipient):
 * sending it again would be refused again. The provider is healthy, so this does not count
 * against its circuit breaker.
 */
export class ProviderRejectedError extends Error {
  override readonly name = 'ProviderRejectedError';
  readonly status: number;

  constructor(
    status: number,
    message: string,
  ) {
    super(message);
    this.status = status;
  }
}
