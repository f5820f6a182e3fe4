/** Thrown when work did not finish within its bound. */
export class DeadlineExceeded extends Error {
  override readonly name = 'DeadlineExceeded';
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super(`did not finish within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Races a promise against a timer. The work itself is not cancelled (the caller decides what a
 * late outcome means); the timer never keeps the process alive.
 */
export function withDeadline<T>(work: PromiseLike<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DeadlineExceeded(timeoutMs)), timeoutMs);
    timer.unref();
    Promise.resolve(work).then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
