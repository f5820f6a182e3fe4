import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError, ERROR_CODES, type ErrorCode } from '../errors/index.ts';

/** Fastify's own error codes, mapped onto ours so every error body is `{ code, message }`. */
const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_CONTENT_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
};

export function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  return reply.code(error.status).send({ code: error.code, message: error.message, ...error.extra });
}

/**
 * Every error a request ends with, as one of our codes. Also Fastify's `frameworkErrors` (a URL
 * that is not valid percent-encoding fails before any route, and would otherwise get Fastify's own body).
 */
export function handleError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error instanceof ApiError) {
    if (error.status >= 500) request.log.warn({ err: error.cause ?? error, code: error.code }, error.message);
    return sendError(reply, error);
  }
  if (error.validation) {
    const first = error.validation[0];
    const params = (first?.params ?? {}) as { missingProperty?: string; additionalProperty?: string };
    const child = params.missingProperty ?? params.additionalProperty;
    const pointer = `${first?.instancePath ?? ''}${child ? `/${child}` : ''}`;
    const where = error.validationContext ?? 'body';
    const detail = params.additionalProperty ? `${first?.message ?? ''}: ${params.additionalProperty}` : first?.message;
    return sendError(
      reply,
      new ApiError('VALIDATION_FAILED', `${where}${pointer} ${detail ?? 'is not valid'}`, { field: `${where}${pointer}` }),
    );
  }
  const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
  if (mapped) return sendError(reply, new ApiError(mapped));
  if (error instanceof SyntaxError) return sendError(reply, new ApiError('INVALID_JSON'));
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return sendError(reply, new ApiError('BAD_REQUEST', error.message));
  request.log.error({ err: error }, 'unhandled error');
  return sendError(reply, new ApiError('INTERNAL_ERROR', ERROR_CODES.INTERNAL_ERROR.message));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new ApiError('ROUTE_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`));
  });
}
