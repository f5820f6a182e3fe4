/** One request of the chaos traffic, bounded in time, and what came back. */
import { performance } from 'node:perf_hooks';

export interface Answer {
  /** performance.now() when it was sent. */
  readonly sentAt: number;
  readonly ms: number;
  /** The HTTP status; 0 when nothing came back (see error). */
  readonly status: number;
  /** The body's machine-readable code (errors), or null. */
  readonly code: string | null;
  /** The order id of a 202, or null. */
  readonly id: string | null;
  /** Idempotent-Replayed: true (a repeat of a key answered with the first answer). */
  readonly replayed: boolean;
  /** 'timeout' when no answer came within the bound (a hang); a connection error's text; or null. */
  readonly error: string | null;
}

export interface Request {
  readonly path?: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** POSTs and waits at most boundMs for the whole answer. */
export async function post(baseUrl: string, request: Request, boundMs: number): Promise<Answer> {
  const sentAt = performance.now();
  const done = (status: number, code: string | null, id: string | null, replayed: boolean, error: string | null): Answer => ({
    sentAt,
    ms: performance.now() - sentAt,
    status,
    code,
    id,
    replayed,
    error,
  });
  try {
    const response = await fetch(`${baseUrl}${request.path ?? '/v1/orders'}`, { method: 'POST', headers: request.headers, body: request.body, signal: AbortSignal.timeout(boundMs) });
    const text = await response.text();
    let body: { code?: unknown; id?: unknown } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // not JSON: the status alone tells
    }
    return done(
      response.status,
      typeof body.code === 'string' ? body.code : null,
      typeof body.id === 'string' ? body.id : null,
      response.headers.get('idempotent-replayed') === 'true',
      null,
    );
  } catch (error) {
    const name = error instanceof Error ? error.name : '';
    if (name === 'TimeoutError' || name === 'AbortError') return done(0, null, null, false, 'timeout');
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    return done(0, null, null, false, cause);
  }
}

/** The status and code of an answer as one label: "202", "503 DB_UNAVAILABLE", "no answer (timeout)". */
export function label(answer: Pick<Answer, 'status' | 'code' | 'error'>): string {
  if (answer.status === 0) return `no answer (${answer.error ?? 'unknown'})`;
  return answer.code ? `${answer.status} ${answer.code}` : String(answer.status);
}
