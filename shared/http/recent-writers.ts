import { LRUCache } from 'lru-cache';
import { EXACT_TTL } from '../cache/exact-ttl.ts';

/**
 * Clients that wrote in the last few seconds: their reads go to the primary, so a client never
 * reads its own write from a lagging replica.
 */
export class RecentWriters {
  private readonly recent: LRUCache<string, true>;

  constructor(windowMs: number) {
    this.recent = new LRUCache({ max: 100_000, ttl: Math.max(1, windowMs), ...EXACT_TTL });
  }

  wrote(clientId: string): void {
    this.recent.set(clientId, true);
  }

  wroteRecently(clientId: string): boolean {
    return this.recent.has(clientId);
  }
}
