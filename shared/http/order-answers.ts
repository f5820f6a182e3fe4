import type { OrderRecord, OrderView } from '../orders/read-order.ts';
import type { TrackingView } from '../orders/tracking.ts';

/** The headers of an order read's answer (200 and 304), wherever it is sent from. */
export const ORDER_CACHE_CONTROL = 'private, no-cache';
export const ORDER_CONTENT_TYPE = 'application/json; charset=utf-8';

/** What a read of one order version answers: its ETag, and its body once a 200 needed it. */
export interface OrderAnswer {
  readonly etag: string;
  /**
   * The order's JSON as the route's response schema writes it. A string, not a Buffer: Node writes
   * a string body in the same write as the headers, a Buffer in a second chunk (writev), which
   * cost the cached read more than everything else it does (V8 profile in bench/RESULTS.md).
   */
  body?: string;
  /** The body's length in bytes (Content-Length), with it. */
  bodyBytes?: number;
}

/**
 * The answers of order versions, made once per version rather than once per request: the ETag
 * and the serialized body depend only on the version, and the L1 hands every reader of a version
 * the same record object until a newer one replaces it. Kept beside that object (a WeakMap), an
 * answer lives exactly as long as the L1 entry (or the L2/MySQL read) holding it, and a new version
 * is a new object with no answer yet: it can never serve an older body.
 */
export class OrderAnswers {
  private readonly answers = new WeakMap<OrderRecord, OrderAnswer>();

  /**
   * The tracking route's serializer of a view (its response schema's, as Fastify compiled it),
   * noted by the route when it first answers: a tracking view holds the time left to delivery, so
   * its body is made per request, and a held tracking read makes it with the route's very function.
   */
  trackingSerializer?: (view: TrackingView) => string;

  of(record: OrderRecord): OrderAnswer {
    let answer = this.answers.get(record);
    if (!answer) {
      answer = { etag: etagOf(record.order) };
      this.answers.set(record, answer);
    }
    return answer;
  }

  /** The body, serialized by `serialize` the first time a 200 of this version is sent. */
  body(record: OrderRecord, serialize: (order: OrderView) => string): string {
    const answer = this.of(record);
    if (answer.body === undefined) {
      answer.body = serialize(record.order);
      answer.bodyBytes = Buffer.byteLength(answer.body);
    }
    return answer.body;
  }
}

export function etagOf(order: OrderView): string {
  return `"v${order.version}"`;
}

/** If-None-Match may list several tags, weak or strong; '*' matches any. */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  // The polling client's usual case: exactly the tag it was given.
  if (header === etag) return true;
  return header.split(',').some((tag) => {
    const trimmed = tag.trim();
    return trimmed === '*' || trimmed.replace(/^W\//, '') === etag;
  });
}
