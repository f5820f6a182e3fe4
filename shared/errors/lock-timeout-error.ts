/** The order's lock could not be taken within the bound: the caller retries or fails; it never writes without it. */
export class LockTimeoutError extends Error {
  override readonly name = 'LockTimeoutError';
  readonly resource: string;
  readonly timeoutMs: number;

  constructor(
    resource: string,
    timeoutMs: number,
  ) {
    super(`could not lock ${resource} within ${timeoutMs} ms`);
    this.resource = resource;
    this.timeoutMs = timeoutMs;
  }
}
