/**
 * For an lru-cache read on every request: check each entry's TTL against performance.now() itself.
 * lru-cache's default (ttlResolution 1) remembers the time for a millisecond and arms a setTimeout,
 * each millisecond the cache is read, to forget it: a thousand timers a second for each such cache,
 * where reading the clock costs less and is exact.
 */
export const EXACT_TTL = { ttlResolution: 0 } as const;
