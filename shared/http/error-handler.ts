import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, ERROR_CODES, retryAfterOf } from '../errors/index.ts';
import { describeSchemaError, type SchemaError } from './validation-message.ts';

/** The code each error answer carried, for the request's metrics (read once the response is sent). */
const answeredCodes = new WeakMap<FastifyReply, string>();

/** The machine-readable code this reply answered with, if it was an error. */
export function errorCodeOf(reply: FastifyReply): string | undefined {
  return answeredCodes.get(reply);
}

export function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  answeredCodes.set(reply, error.code);
  const retryAfter = retryAfterOf(error.code);
  if (retryAfter !== undefined && !reply.hasHeader('retry-after')) reply.header('retry-after', String(retryAfter));
  return reply.code(error.status).send({ code: error.code, message: error.message, ...error.extra });
}

/**
 * Every error answer is `{ code, message }` (+ `field`) from the one registry, whatever raised it:
 * our own ApiErrors, the schema validator, Fastify's body parsing, its handler timeout, or a bug.
 * The same fault gets the same code whatever the transport detail: a body that is not JSON because
 * of its content type (text/plain, none at all) is UNSUPPORTED_CONTENT_TYPE; an empty body is
 * INVALID_JSON whether or not it said application/json. Also Fastify's `frameworkErrors` (a URL
 * that is not valid percent-encoding fails before any route, and would otherwise get Fastify's own body).
 */
export function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const known = toApiError(error, request);
  if (known) {
    if (known.status >= 500) request.log.warn({ err: known.cause ?? known, code: known.code }, known.message);
    return sendError(reply, known);
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendError(reply, new ApiError('INTERNAL_ERROR', ERROR_CODES.INTERNAL_ERROR.message));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new ApiError('ROUTE_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`));
  });
}

function toApiError(error: FastifyError, request: FastifyRequest): ApiError | undefined {
  if (error instanceof ApiError) return error;
  if (error.validation) {
    const first = error.validation[0] as SchemaError | undefined;
    const context = error.validationContext ?? 'body';
    if (context === 'body' && first?.instancePath === '' && first.keyword === 'type' && bodyIsEmpty(request)) return emptyBody();
    if (!first) return new ApiError('VALIDATION_FAILED');
    if (context === 'headers') return headerError(first, request);
    const problem = describeSchemaError(first, context);
    return new ApiError('VALIDATION_FAILED', problem.message, problem.field ? { field: problem.field } : {});
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('PAYLOAD_TOO_LARGE', `The request body is larger than the limit of ${request.routeOptions.bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': {
      const type = request.headers['content-type'];
      const got = type ? `Content-Type ${printable(type)}` : 'no Content-Type';
      return new ApiError('UNSUPPORTED_CONTENT_TYPE', `Send the body as JSON with Content-Type: application/json (this request had ${got})`);
    }
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return emptyBody();
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError('INVALID_JSON', `The request body is not valid JSON: ${error.message}`);
    case 'FST_ERR_HANDLER_TIMEOUT':
      return new ApiError('REQUEST_TIMEOUT', undefined, {}, { cause: error });
  }
  if (error instanceof SyntaxError) return new ApiError('INVALID_JSON', `The request body is not valid JSON: ${error.message}`);
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return new ApiError('BAD_REQUEST', error.message);
  return undefined;
}

/** A header the route's schema requires (Idempotency-Key) has its own code. */
function headerError(first: SchemaError, request: FastifyRequest): ApiError {
  const name = first.keyword === 'required' ? String(first.params.missingProperty) : first.instancePath.slice(1);
  if (name === 'idempotency-key') {
    const sent = request.headers['idempotency-key'];
    const message =
      typeof sent === 'string'
        ? `The Idempotency-Key header must be 1-255 printable ASCII characters, with no space at either end (got ${sent.length} characters)`
        : 'The Idempotency-Key header is required: 1-255 printable ASCII characters, unique per order';
    return new ApiError('IDEMPOTENCY_KEY_REQUIRED', message, { field: 'Idempotency-Key' });
  }
  const problem = describeSchemaError(first, 'headers');
  return new ApiError('VALIDATION_FAILED', problem.message, problem.field ? { field: problem.field } : {});
}

function emptyBody(): ApiError {
  return new ApiError('INVALID_JSON', 'The request body is empty: send a JSON object with Content-Type: application/json');
}

/** No bytes came with the request (no Content-Type and no length, or a length of 0). */
function bodyIsEmpty(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined) return Number(length) === 0;
  return request.headers['transfer-encoding'] === undefined;
}

function printable(text: string): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 80)}...` : clean;
}
