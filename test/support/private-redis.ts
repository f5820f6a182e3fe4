/**
 * A Redis server of the test's own on a free port (as ours runs: no persistence), which the test
 * may crash and restart without touching the Redis every other test file shares. One helper with
 * the benches: bench/lib/process/private-redis.ts (start, restart, crash, stop, url, port).
 */
export { PrivateRedis } from '../../bench/lib/process/private-redis.ts';
