import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/child-process.ts';

/**
 * The CLI answers at once: `--help`, and a command refused for its input, load none of the heavy
 * modules (knex, mysql2, ioredis, bullmq, cli-progress); each command loads them only when it runs.
 */

const HEAVY = ['knex', 'mysql2', 'ioredis', 'bullmq', 'cli-progress'];

function loadedBy(args: string[]): { status: number | null; packages: string[]; output: string } {
  const run = spawnSync(process.execPath, ['--import', './test/support/report-packages.ts', 'workers/cli.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:1', MYSQL_URL: 'mysql://root@127.0.0.1:1/courier' },
    timeout: 60_000,
  });
  const line = /^packages loaded: (.*)$/m.exec(run.stderr);
  expect(line, run.stderr).not.toBeNull();
  return { status: run.status, packages: line![1]!.split(' ').filter(Boolean), output: run.stdout + run.stderr };
}

describe('npm run cli', () => {
  it('--help, a command\'s --help and a refused input load none of the heavy modules', () => {
    for (const args of [['--help'], ['orders:redrive', '--help'], ['switches:set', 'nope', 'off'], ['orders:show', '12ab']]) {
      const run = loadedBy(args);
      expect(run.packages, args.join(' ')).toContain('commander');
      for (const name of HEAVY) expect(run.packages, `${args.join(' ')} loaded ${name}`).not.toContain(name);
    }
  });

  it('a command that opens Redis loads ioredis then (and fails with its one-line reason here: nothing listens)', () => {
    const run = loadedBy(['switches:list']);
    expect(run.status).toBe(1);
    expect(run.output).toMatch(/courier: Redis is not reachable at 127\.0\.0\.1:1: /);
    expect(run.packages).toContain('ioredis');
    expect(run.packages).not.toContain('knex');
  });
});
