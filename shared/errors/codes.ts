/**
 * The one registry of error codes Courier answers with. Every 4xx/5xx body is
 * `{ code, message }` (plus `field` for validation errors); clients branch on `code`. A code with
 * `retryAfterSeconds` is answered with that `Retry-After` header (unless the answer sets its own).
 * The OpenAPI document (/docs) is written from this list; docs/api.md's table is checked against it
 * (test/docs-config.test.ts).
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, message: 'The request body or parameters are not valid' },
  INVALID_JSON: { status: 400, message: 'The request body is not valid JSON' },
  UNSUPPORTED_CONTENT_TYPE: { status: 400, message: 'Send the body as application/json' },
  IDEMPOTENCY_KEY_REQUIRED: { status: 400, message: 'The Idempotency-Key header (1-255 printable ASCII characters) is required' },
  UNAUTHORIZED: { status: 401, message: 'A valid API key is required: Authorization: Bearer <key>' },
  DASHBOARD_READ_ONLY: { status: 403, message: 'The viewer may look but not change anything; sign in as the operator to retry, promote or remove failed jobs' },
  DASHBOARD_ACTION_FORBIDDEN: { status: 403, message: 'On the dashboard an operator may retry and remove failed jobs and promote delayed ones, nothing else' },
  CROSS_ORIGIN_REFUSED: { status: 403, message: "A change must come from the dashboard's own page: its Origin (or Referer) must name this host" },
  DASHBOARD_DISABLED: { status: 404, message: 'The queue dashboard is off: set DASHBOARD_OPERATOR_PASSWORD and/or DASHBOARD_VIEWER_PASSWORD' },
  ORDER_NOT_FOUND: { status: 404, message: 'No such order' },
  ROUTE_NOT_FOUND: { status: 404, message: 'No such route' },
  ILLEGAL_TRANSITION: { status: 409, message: 'The order cannot make that transition from its current state' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is larger than the limit' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, message: 'This Idempotency-Key was already used with a different request body' },
  UNKNOWN_MERCHANT: { status: 422, message: 'No merchant has that merchantId' },
  RATE_LIMITED: { status: 429, message: 'Too many requests for this API key; retry after the Retry-After delay', retryAfterSeconds: 1 },
  BAD_REQUEST: { status: 400, message: 'The request is malformed' },
  INTERNAL_ERROR: { status: 500, message: 'Something went wrong on our side' },
  DB_UNAVAILABLE: { status: 503, message: 'The database is unavailable; retry with the same Idempotency-Key' },
  SHUTTING_DOWN: { status: 503, message: 'This instance is shutting down; retry' },
  ORDER_BUSY: { status: 503, message: 'The order is being changed by someone else; retry' },
  REDIS_UNAVAILABLE: { status: 503, message: 'Redis is unavailable; retry' },
  OVERLOADED: {
    status: 503,
    message: 'This instance has as much work as it can take; retry after the Retry-After delay (with the same Idempotency-Key)',
    retryAfterSeconds: 1,
  },
  REQUEST_TIMEOUT: {
    status: 503,
    message: 'The request did not finish in time; retry (an order with the same Idempotency-Key is never created twice)',
    retryAfterSeconds: 1,
  },
  // The degradation switches (npm run cli -- switches:set <name> on|off).
  UNKNOWN_SWITCH: { status: 422, message: 'No degradation switch has that name' },
  INVALID_SWITCH_VALUE: { status: 400, message: 'A switch is set to on or off' },
} as const satisfies Record<string, { status: number; message: string; retryAfterSeconds?: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The Retry-After a code is answered with, in seconds, if any. */
export function retryAfterOf(code: ErrorCode): number | undefined {
  const entry = ERROR_CODES[code];
  return 'retryAfterSeconds' in entry ? entry.retryAfterSeconds : undefined;
}
