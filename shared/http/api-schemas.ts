import { Type, type TSchema } from 'typebox';
import { ERROR_CODES, retryAfterOf, type ErrorCode } from '../errors/index.ts';
import { REQUEST_ID_PATTERN } from './request-id.ts';

/**
 * The parts every API route's schema shares: the error body and the error answers (written from
 * the one registry of codes), and the headers every answer carries. Response schemas also serialize
 * the answers (fast-json-stringify), so they list every field the handlers send.
 */

const ALL_CODES = Object.keys(ERROR_CODES) as ErrorCode[];

/** `{ code, message }` (+ `field`), the body of every 4xx and 5xx. */
export const ErrorBody = Type.Object(
  {
    code: Type.Enum(ALL_CODES, { description: 'What went wrong, machine-readable (the table in the API description)' }),
    message: Type.String({ description: 'What went wrong and what was expected, for a person' }),
    field: Type.Optional(
      Type.String({ description: 'Validation errors: the field at fault, as a client writes it (dropoff.lat, items[0].qty, merchantId), or the header' }),
    ),
    status: Type.Optional(Type.String({ description: 'ILLEGAL_TRANSITION: the order status the event did not apply to' })),
    version: Type.Optional(Type.Integer({ description: "ILLEGAL_TRANSITION: the order's version" })),
  },
  { additionalProperties: true },
);

const header = (description: string, schema: Record<string, unknown> = {}) => ({ type: 'string', description, ...schema });

/** Headers on every answer of the API. */
export const COMMON_RESPONSE_HEADERS = {
  'X-Request-Id': header("The request's id: the X-Request-Id the client sent if it was a good one, else one the web made; on every log line of the request and stored with a new order"),
};

/** Headers of the rate limiter, on every answer of a rate-limited route. */
export const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': header("The API key's rate, in requests per second", { type: 'integer' }),
  'X-RateLimit-Remaining': header('Requests left in the current second', { type: 'integer' }),
  'X-RateLimit-Reset': header('Seconds until the current window ends', { type: 'integer' }),
};

const RETRY_AFTER = { 'Retry-After': header('Seconds to wait before retrying', { type: 'integer' }) };

/** The error answers of the given statuses, each listing the registry's codes of that status. */
export function errorResponses(statuses: readonly number[], headers: Record<string, unknown> = {}): Record<number, TSchema> {
  return Object.fromEntries(
    statuses.map((status) => {
      const codes = ALL_CODES.filter((code) => ERROR_CODES[code].status === status);
      const retries = codes.some((code) => retryAfterOf(code) !== undefined);
      return [
        status,
        Type.Object(ErrorBody.properties, {
          additionalProperties: true,
          description: `${codes.join(', ')}`,
          headers: { ...COMMON_RESPONSE_HEADERS, ...headers, ...(retries ? RETRY_AFTER : {}) },
        }),
      ];
    }),
  );
}

/** Request headers of the API: the key is a security scheme (bearer); the request id is optional. */
export const REQUEST_ID_HEADER_SCHEMA = Type.Optional(
  Type.String({
    description: `Your id for this request (${REQUEST_ID_PATTERN.source}); one that does not match is replaced by a new one, never refused`,
  }),
);

/** The security requirement of every API route: Authorization: Bearer <key>. */
export const BEARER = [{ apiKey: [] }];
