import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { AuthenticatedClient, Authenticator } from '../clients/authenticator.ts';
import type { LastUsedRecorder } from '../clients/last-used.ts';
import { ApiError, DbUnavailableError, coerceError, isConnectionError } from '../errors/index.ts';
import { DeadlineExceeded, withDeadline } from '../with-deadline.ts';

declare module 'fastify' {
  interface FastifyRequest {
    client: AuthenticatedClient | null;
  }
}

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const BEARER_PREFIX = 'Bearer ';

/** The API key of an Authorization header (`Bearer <key>`); undefined when there is none. */
export function bearerKeyOf(header: string | undefined): string | undefined {
  return typeof header === 'string' ? BEARER.exec(header)?.[1] : undefined;
}

/**
 * The client whose key an Authorization header carries, if the authenticator holds it (null: held as
 * bad; undefined: not held, or not the plain `Bearer <key>` form): what bearerKeyOf and peek() answer,
 * without the regex, for a path that hands anything else on. The authenticator holds no key with
 * white space in it (it refuses one unread), so a header's text after "Bearer " that is a held key
 * is the very key bearerKeyOf would read from it; any other spelling is simply not held.
 */
export function heldClientOf(header: string | undefined, authenticator: Authenticator): AuthenticatedClient | null | undefined {
  return header !== undefined && header.startsWith(BEARER_PREFIX) ? authenticator.peek(header.slice(BEARER_PREFIX.length)) : undefined;
}

/**
 * An onRequest hook: runs before the body is read, so an unauthenticated request costs no parsing.
 * A key whose answer is cached (Authenticator: a hit or a known bad key, for at most
 * AUTH_CACHE_TTL_SECONDS) is decided in the same tick, with no promise; only a miss waits on MySQL,
 * within `timeoutMs`. A good key is noted as used (in memory; written once a minute, see
 * LastUsedRecorder).
 */
export function authenticateRequest(authenticator: Authenticator, timeoutMs: number, lastUsed?: LastUsedRecorder) {
  const admit = (request: FastifyRequest, client: AuthenticatedClient | null | undefined, done: HookHandlerDoneFunction): void => {
    if (!client) return done(new ApiError('UNAUTHORIZED', 'The API key is not valid (unknown or revoked)'));
    request.client = client;
    lastUsed?.touch(client.id);
    done();
  };
  return (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const key = bearerKeyOf(request.headers.authorization);
    if (!key) return done(new ApiError('UNAUTHORIZED', 'Send your API key as Authorization: Bearer <key>'));
    const cached = authenticator.peek(key);
    if (cached !== undefined) return admit(request, cached, done);
    withDeadline(authenticator.authenticate(key), timeoutMs).then(
      (client) => admit(request, client, done),
      (error: unknown) => {
        const cause = coerceError(error);
        done(cause instanceof DeadlineExceeded || isConnectionError(cause) ? new DbUnavailableError(cause) : cause);
      },
    );
  };
}
