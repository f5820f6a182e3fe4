import { ERROR_CODES, type ErrorCode } from './codes.ts';

/** An error with a registered code; the HTTP layer turns it into `{ code, message }`. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;

  readonly code: ErrorCode;
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string = ERROR_CODES[code].message,
    extra: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.extra = extra;
    this.status = ERROR_CODES[code].status;
  }
}
