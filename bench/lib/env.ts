/** The settings both benches read from the environment, with their defaults. */
import { resolve } from 'node:path';

/** An integer setting: fallback when unset or blank; a value that is not an integer in [min, max] stops the bench. */
export function intEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

/** BENCH_MYSQL_URL, by default the local MariaDB's database of that bench. */
export function benchMysqlUrl(defaultDatabase: string): string {
  return process.env.BENCH_MYSQL_URL || `mysql://root@127.0.0.1:3306/${defaultDatabase}`;
}

/** BENCH_REDIS_URL, by default the local Redis. */
export const REDIS_URL = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';

/** BENCH_CPU_PROF_DIR: when set, each process a bench starts writes a V8 CPU profile under it. */
export const CPU_PROF_DIR = process.env.BENCH_CPU_PROF_DIR ? resolve(process.env.BENCH_CPU_PROF_DIR) : undefined;

/** BENCH_SERVERS: which of a bench's servers to run (comma-separated), all of them by default. */
export function serversFromEnv<N extends string>(all: readonly N[]): N[] {
  return (process.env.BENCH_SERVERS || all.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      if (!(all as readonly string[]).includes(s)) throw new Error(`BENCH_SERVERS: unknown server "${s}"`);
      return s as N;
    });
}
