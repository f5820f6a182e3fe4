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
declare module 'fastify' {
  interface FastifyReply {
    /** RequestDeadlines' own: when the request began (performance.now), and its neighbours among those still open. */
    deadlineStartedAt: number;
    deadlinePrev: FastifyReply | null;
    deadlineNext: FastifyReply | null;
    deadlineOpen: boolean;
  }
}

export class RequestDeadlines {
  // The open requests in arrival order, so a sweep stops at the first one still within its bound: a
  // list linked through the replies themselves (decorated fields), which costs a request a few
  // field writes where a Map of replies cost it an entry and an identity hash (~1.3 µs of a
  // /healthz's ~60 in a V8 profile under wrk).
  private head: FastifyReply | null = null;
  private tail: FastifyReply | null = null;

  /** Starts the sweep (stopped when `app` closes); the app's first and last hooks call start() and finish(). */
  constructor(app: FastifyInstance, timeoutMs: number) {
    app.decorateReply('deadlineStartedAt', 0);
    app.decorateReply('deadlinePrev', null);
    app.decorateReply('deadlineNext', null);
    app.decorateReply('deadlineOpen', false);
    const sweep = setInterval(
      () => {
        const now = performance.now();
        for (let reply = this.head; reply !== null && now - reply.deadlineStartedAt >= timeoutMs; reply = this.head) {
          this.finish(reply);
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
    reply.deadlineStartedAt = performance.now();
    reply.deadlineOpen = true;
    reply.deadlinePrev = this.tail;
    reply.deadlineNext = null;
    if (this.tail) this.tail.deadlineNext = reply;
    else this.head = reply;
    this.tail = reply;
  }

  /** Takes the request out of the open ones (again: a no-op). */
  finish(reply: FastifyReply): void {
    if (!reply.deadlineOpen) return;
    reply.deadlineOpen = false;
    const { deadlinePrev: prev, deadlineNext: next } = reply;
    if (prev) prev.deadlineNext = next;
    else this.head = next;
    if (next) next.deadlinePrev = prev;
    else this.tail = prev;
    reply.deadlinePrev = null;
    reply.deadlineNext = null;
  }

  /** How many requests are open (a walk of the list: for tests). */
  get size(): number {
    let n = 0;
    for (let reply = this.head; reply !== null; reply = reply.deadlineNext) n++;
    return n;
  }
}
