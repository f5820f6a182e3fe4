import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';

/**
 * A request id a client may send in X-Request-Id: 1-128 characters that are safe in a log line, a
 * header and a column (letters, digits and . _ : + / = -): UUIDs, ULIDs, W3C trace ids and
 * base64 all fit.
 */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:+/=-]{1,128}$/;

export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * The id of a request: the client's X-Request-Id when it is a good one, else a new UUID. A bad one
 * is replaced, not refused (as Heroku's router does): a tracing header must never cost a merchant
 * an order, and the answer's X-Request-Id shows the client which id its request was logged and
 * stored under.
 */
export function requestIdOf(raw: IncomingMessage): string {
  const sent = raw.headers[REQUEST_ID_HEADER];
  return typeof sent === 'string' && REQUEST_ID_PATTERN.test(sent) ? sent : randomUUID();
}
