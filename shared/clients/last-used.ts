import { caseById, type Db } from '../db.ts';
import { coerceError } from '../errors/index.ts';
import type { Logger } from '../logger.ts';
import { withDeadline } from '../with-deadline.ts';

/** How often a web process writes the keys it saw used: `client:list`'s "last used" lags by up to this. */
export const LAST_USED_FLUSH_MS = 60_000;

/**
 * Remembers which API clients were used, in memory (a map write per request), and writes them to
 * `api_clients.last_used_at` once per interval in one UPDATE for all of them: a key costs MySQL at
 * most one row write a minute per web process, whatever its request rate. The column only moves
 * forward (another process may have written a later time). A failed write is kept for the next one.
 */
export class LastUsedRecorder {
  private seen = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  private readonly db: Db;
  private readonly opts: { readonly intervalMs: number; readonly timeoutMs: number; readonly logger: Logger };

  constructor(db: Db, opts: { intervalMs?: number; timeoutMs: number; logger: Logger }) {
    this.db = db;
    this.opts = { intervalMs: opts.intervalMs ?? LAST_USED_FLUSH_MS, timeoutMs: opts.timeoutMs, logger: opts.logger };
  }

  touch(clientId: string): void {
    this.seen.set(clientId, Date.now());
  }

  start(): void {
    this.timer ??= setInterval(() => void this.flush(), this.opts.intervalMs).unref();
  }

  /** Writes what was seen since the last write; resolves with the number of clients written. */
  async flush(): Promise<number> {
    if (this.seen.size === 0) return 0;
    const batch = this.seen;
    this.seen = new Map();
    const pairs = [...batch].map(([id, ms]) => [id, new Date(ms)] as const);
    try {
      await withDeadline(
        this.db('api_clients')
          .whereIn('id', [...batch.keys()])
          .update({ last_used_at: this.db.raw('GREATEST(COALESCE(last_used_at, ?), ?)', [new Date(0), caseById(this.db, pairs)]) }),
        this.opts.timeoutMs,
      );
      return batch.size;
    } catch (error) {
      for (const [id, ms] of batch) if ((this.seen.get(id) ?? 0) < ms) this.seen.set(id, ms);
      this.opts.logger.warn({ err: coerceError(error), clients: batch.size }, 'could not record when API keys were last used; trying again at the next write');
      return 0;
    }
  }

  /** Stops the timer and writes what is left (bounded). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
