import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { ApiError } from '../errors/index.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Counted by the in-flight gate (it passed the bound), so its answer frees a place. */
    inFlight: boolean;
  }
}

type Connection = NodeJS.EventEmitter & { destroyed?: boolean };

/**
 * The bound on the API requests one web process holds (HTTP_MAX_IN_FLIGHT): a request past it is
 * answered 503 OVERLOADED with Retry-After at once, before its key is looked up or its body read,
 * so an overload costs a refused request, never a pile-up of requests waiting on the same MySQL.
 * A request leaves when its answer is sent or its connection closes.
 *
 * Counted per connection, not per request: a listener on each response's 'close' (and Fastify's
 * onRequestAbort, which adds one too) cost a cached read ~2 µs each of its ~40 (bench/RESULTS.md,
 * issue 14), while a connection carries thousands of reads. So the answer's onResponse hook frees
 * its place, and one 'close' listener per connection frees those whose client went away first.
 */
export class InFlightGate {
  private current = 0;
  /**
   * How many of a connection's requests are counted; -1 once it closed (they were freed then). Kept
   * beside the socket, not on it: a property added to Node's sockets slows every access to them.
   */
  private readonly counted = new WeakMap<Connection, number>();

  readonly max: number;
  private readonly onShed: () => void;

  constructor(max: number, onShed: () => void = () => undefined) {
    this.max = max;
    this.onShed = onShed;
  }

  /** Requests being served now. */
  get size(): number {
    return this.current;
  }

  /** At HTTP_MAX_IN_FLIGHT: the next request is shed. */
  get full(): boolean {
    return this.current >= this.max;
  }

  /** The onRequest hook (the first of the API's). */
  readonly admit = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (this.full) {
      this.onShed();
      done(new ApiError('OVERLOADED', `This instance is serving ${this.max} requests (HTTP_MAX_IN_FLIGHT); retry after the Retry-After delay`));
      return;
    }
    const socket: Connection = request.raw.socket;
    const counted = this.counted.get(socket);
    // A connection already closed: nothing will answer it, and no 'close' is coming to free its place.
    if (counted === -1 || socket.destroyed) return done();
    if (counted === undefined) socket.once('close', () => this.closed(socket));
    this.counted.set(socket, (counted ?? 0) + 1);
    this.current += 1;
    request.inFlight = true;
    done();
  };

  /** The onResponse hook: the answer went out. */
  readonly release = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (request.inFlight) {
      const socket: Connection = request.raw.socket;
      const counted = this.counted.get(socket) ?? 0;
      // After its connection closed, its place was already freed.
      if (counted > 0) {
        this.counted.set(socket, counted - 1);
        this.current -= 1;
      }
    }
    done();
  };

  private closed(socket: Connection): void {
    this.current -= Math.max(0, this.counted.get(socket) ?? 0);
    this.counted.set(socket, -1);
  }
}
