import { dirname } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { runScript, type Child } from './support/child-process.ts';

// `node` in the stand-in Procfile lines is the Node running the tests, as npm start makes it.
const env = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
const started: Child[] = [];

function runner(...members: string[]): Child {
  const child = runScript('test/support/run-procfile.ts', members, env);
  started.push(child);
  return child;
}

/** The runner's own lines: each process's lines come prefixed with `<name> | `. */
function ownLines(child: Child): string[] {
  return child
    .output()
    .split('\n')
    .filter((line) => line.trim() !== '' && !/^\S+\s*\| /.test(line));
}

async function waitForAllReady(child: Child, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((child.output().match(/\| ready/g) ?? []).length < count) {
    if (Date.now() > deadline) throw new Error(`not all ${count} processes ready; output:\n${child.output()}`);
    await delay(20);
  }
}

afterEach(async () => {
  for (const child of started.splice(0)) {
    child.kill();
    await child.exited;
  }
});

describe('npm start: the runner of the Procfile processes', () => {
  it('a Ctrl-C that every process survives ends in one line naming them all, exit 0', async () => {
    const child = runner('web=clean', 'worker=clean', 'notifier=clean');
    await waitForAllReady(child, 3);
    child.process.kill('SIGINT');
    const { code } = await child.exited;
    expect(child.output()).toMatch(/web\s*\| draining/);
    expect(ownLines(child)).toEqual(['Courier stopped cleanly (SIGINT): web, worker, notifier']);
    expect(code).toBe(0);
  });

  it('a process that exits on its own is named loudly, with its code; the others are stopped; exit 1', async () => {
    const child = runner('web=clean', 'worker=dies');
    const { code } = await child.exited;
    expect(code).toBe(1);
    expect(child.output()).toMatch(/web\s*\| draining/);
    expect(ownLines(child)).toEqual([
      'start: worker exited on its own (exit code 3): stopping the others',
      'Courier stopped (worker exited); not cleanly: worker (exit code 3)',
    ]);
  });

  it('a process that exits on its own is not a clean stop, even with exit code 0', async () => {
    const child = runner('web=clean', 'scheduler=quits');
    const { code } = await child.exited;
    expect(code).toBe(1);
    expect(ownLines(child)).toEqual([
      'start: scheduler exited on its own (exit code 0): stopping the others',
      'Courier stopped (scheduler exited); not cleanly: scheduler (exit code 0)',
    ]);
  });

  it('a process that fails its own stop is named with its code, exit 1', async () => {
    const child = runner('web=clean', 'notifier=unclean');
    await waitForAllReady(child, 2);
    child.process.kill('SIGINT');
    const { code } = await child.exited;
    expect(code).toBe(1);
    expect(ownLines(child)).toEqual(['Courier stopped (SIGINT); not cleanly: notifier (exit code 2)']);
  });
});
