import type { FastifyInstance, FastifyReply } from 'fastify';
import { ApiError } from '../errors/index.ts';
import { sendError } from './error-handler.ts';

/**
 * REQUEST_TIMEOUT_MS for the application's part of a request (from its first hook to its answer),
 * kept by one timer per process: a sweep, every tenth of the bound, answers the requests past it
 * with 503 REQUEST_TIMEOUT (a handler still running then finds its reply sent, as with Fastify's own
 * timeout). Fastify's `handlerTimeout` does this with an AbortController and a timer per request,
 * and aborts the controller when every request closes, answered or not: a DOMException with its
 * stack each time, ~8% of the intake's CPU in a V8 profile.
 *
 * A request whose client went away stays until the sweep reaches it, which only drops it (its
 * connection is gone): an onRequestAbort hook to drop it sooner makes Fastify listen on every
 * request's 'close', ~2 µs of a cached read's ~40 (bench/RESULTS.md, issue 14). start() and
 * finish() are called from the app's own first and last hooks, not hooks of their own: each hook is
 * one more call through Fastify's runner on every request.
 */
export class RequestDeadlines {
  // In arrival order, so a sweep stops at the first request still within its bound.
  private readonly open = new Map<FastifyReply, number>();

  /** Starts the sweep (stopped when `app` closes); the app's first and last hooks call start() and finish(). */
  constructor(app: FastifyInstance, timeoutMs: number) {
    const sweep = setInterval(
      () => {
        const now = performance.now();
        for (const [reply, startedAt] of this.open) {
          if (now - startedAt < timeoutMs) break;
          this.open.delete(reply);
          if (!reply.sent && !reply.raw.headersSent && !reply.raw.destroyed) sendError(reply, new ApiError('REQUEST_TIMEOUT'));
        }
      },
      Math.max(10, Math.min(1000, Math.round(timeoutMs / 10))),
    );
    sweep.unref();
    app.addHook('onClose', (_app, done) => {
      clearInterval(sweep);
      done();
    });
  }

  start(reply: FastifyReply): void {
    this.open.set(reply, performance.now());
  }

  finish(reply: FastifyReply): void {
    this.open.delete(reply);
  }
}
