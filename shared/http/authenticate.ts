import type { FastifyRequest } from 'fastify';
import type { AuthenticatedClient, Authenticator } from '../clients/authenticator.ts';
import type { LastUsedRecorder } from '../clients/last-used.ts';
import { ApiError, DbUnavailableError, coerceError, isConnectionError } from '../errors/index.ts';
import { DeadlineExceeded, withDeadline } from '../with-deadline.ts';

declare module 'fastify' {
  interface FastifyRequest {
    client: AuthenticatedClient | null;
  }
}

/**
 * An onRequest hook: runs before the body is read, so an unauthenticated request costs no parsing.
 * A good key is noted as used (in memory; written once a minute, see LastUsedRecorder).
 */
export function authenticateRequest(authenticator: Authenticator, timeoutMs: number, lastUsed?: LastUsedRecorder) {
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match?.[1]) throw new ApiError('UNAUTHORIZED', 'Send your API key as Authorization: Bearer <key>');
    const cached = authenticator.peek(match[1]);
    let client = cached ?? undefined;
    if (cached === undefined) {
      try {
        client = await withDeadline(authenticator.authenticate(match[1]), timeoutMs);
      } catch (error) {
        const cause = coerceError(error);
        if (cause instanceof DeadlineExceeded || isConnectionError(cause)) throw new DbUnavailableError(cause);
        throw cause;
      }
    }
    if (!client) throw new ApiError('UNAUTHORIZED', 'The API key is not valid (unknown or revoked)');
    request.client = client;
    lastUsed?.touch(client.id);
  };
}
