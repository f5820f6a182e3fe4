import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import { ApiError } from '../errors/index.ts';

/**
 * The bound on the API requests one web process holds (HTTP_MAX_IN_FLIGHT): a request past it is
 * answered 503 OVERLOADED with Retry-After at once, before its key is looked up or its body read,
 * so an overload costs a refused request, never a pile-up of requests waiting on the same MySQL.
 * A request leaves when its answer is sent or its connection closes.
 */
export class InFlightGate {
  private current = 0;

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

  /** An onRequest hook (the first of the API's). */
  readonly admit = (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (this.current >= this.max) {
      this.onShed();
      done(new ApiError('OVERLOADED', `This instance is serving ${this.max} requests (HTTP_MAX_IN_FLIGHT); retry after the Retry-After delay`));
      return;
    }
    this.current += 1;
    // 'close' comes once per response, whether it was sent or the client went away.
    reply.raw.once('close', this.release);
    done();
  };

  private readonly release = (): void => {
    this.current -= 1;
  };
}
