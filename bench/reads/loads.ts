/**
 * What each server of the read load is asked, and what a right answer is. The ids come from the
 * hot set; the request is the same shape for every server that answers it (the hello servers get
 * the order GET too, with its Authorization header, which they ignore).
 */
import type { OrderStatus } from '../../shared/orders/status.ts';
import type { ServerName } from './settings.ts';

export interface LoadRequest {
  readonly path: string;
  readonly headers: Record<string, string>;
}

export interface Load {
  /** What it measures, for the report. */
  readonly what: string;
  readonly request: (orderId: string) => LoadRequest;
  /** The status a right answer has under the load (200, or 304 for the conditional GET). */
  readonly status: number;
}

export type Expected = ReadonlyMap<string, { status: OrderStatus; version: number }>;

/**
 * The load of `name`, its request for each id made once: the load generator shares the machine's
 * two cores with the server, so a request it builds anew each time (the 304's headers with their
 * ETag) would lower that server's figure for work no client of it does (a polling client keeps the
 * tag it was given).
 */
export function loadOf(name: ServerName, apiKey: string, expected: Expected): Load {
  const load = loadOnce(name, apiKey, expected);
  const made = new Map<string, LoadRequest>();
  const request = (id: string): LoadRequest => {
    let found = made.get(id);
    if (!found) made.set(id, (found = load.request(id)));
    return found;
  };
  return { ...load, request };
}

function loadOnce(name: ServerName, apiKey: string, expected: Expected): Load {
  const auth = { authorization: `Bearer ${apiKey}` };
  const order = (id: string) => ({ path: `/v1/orders/${id}`, headers: auth });
  switch (name) {
    case 'cached':
      return { what: 'GET /v1/orders/:id from the warm cache', request: order, status: 200 };
    case 'uncached':
      return { what: 'GET /v1/orders/:id, ORDER_CACHE=off (MySQL)', request: order, status: 200 };
    case 'not-modified':
      return {
        what: 'GET /v1/orders/:id with If-None-Match: the current ETag (304)',
        request: (id) => ({ path: `/v1/orders/${id}`, headers: { ...auth, 'if-none-match': `"v${expected.get(id)?.version ?? 0}"` } }),
        status: 304,
      };
    case 'tracking':
      return { what: 'GET /v1/orders/:id/tracking: the order, its rider, the ETA', request: (id) => ({ path: `/v1/orders/${id}/tracking`, headers: auth }), status: 200 };
    case 'healthz':
      return { what: "GET /healthz: Courier's own hello-world, in the app (its hooks, request ids, metrics)", request: () => ({ path: '/healthz', headers: auth }), status: 200 };
    case 'hello':
      return { what: 'a bare Fastify hello-world in a process of its own (the ceiling)', request: order, status: 200 };
    case 'hello-order':
      return { what: "the bare Fastify server answering one order's bytes with Courier's headers (information)", request: order, status: 200 };
    case 'hello-twin':
      return { what: 'a second bare hello-world: the same server against itself, the run\'s own noise (information)', request: order, status: 200 };
  }
}

/** Whether an answer to the check pass is right for this server. */
export function rightAnswer(name: ServerName, id: string, want: { status: OrderStatus; version: number } | undefined, status: number, body: string): boolean {
  if (!want) return false;
  switch (name) {
    case 'hello':
    case 'hello-order':
    case 'hello-twin':
      return status === 200;
    case 'healthz':
      return status === 200 && body === '{"status":"ok"}';
    case 'not-modified':
      return status === 304 && body === '';
    case 'tracking': {
      if (status !== 200) return false;
      const view = JSON.parse(body) as { order?: { id?: string; status?: string; version?: number; riderId?: string | null }; rider?: { riderId?: string } | null; eta?: unknown; missing?: unknown[] };
      const o = view.order;
      const dispatched = want.status === 'DISPATCHED' || want.status === 'PICKED_UP';
      return (
        o?.id === id && o.status === want.status && o.version === want.version && view.missing?.length === 0 &&
        (!dispatched || (view.rider?.riderId === o.riderId && view.eta !== null))
      );
    }
    case 'cached':
    case 'uncached': {
      if (status !== 200) return false;
      const o = JSON.parse(body) as { id?: string; status?: string; version?: number };
      return o.id === id && o.status === want.status && o.version === want.version;
    }
  }
}
