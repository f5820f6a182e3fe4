import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RequestDeadlines } from '../shared/http/request-deadline.ts';

/**
 * The deadline's bookkeeping on a bare Fastify app (no services): requests answered in any order
 * leave its list, the ones past the bound are answered 503 REQUEST_TIMEOUT by the sweep, and a
 * request's second finish (the sweep's answer runs the last hook again) changes nothing. The sweep's
 * timer and clock are fake, moved by the test: on a loaded machine a real bound could pass before
 * every request was in. The whole web's behaviour under a slow MySQL is in shedding.test.ts.
 */

const BOUND_MS = 60;
let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
  vi.useRealTimers();
});

async function appWithDeadlines(): Promise<{ app: FastifyInstance; deadlines: RequestDeadlines; release: () => void; started: (n: number) => Promise<void> }> {
  vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
  const instance = Fastify();
  const deadlines = new RequestDeadlines(instance, BOUND_MS);
  // Resolves once n requests have begun (not by polling: vitest's polls move fake timers on).
  let begun = 0;
  const waiting: { n: number; resolve: () => void }[] = [];
  const started = (n: number) => new Promise<void>((resolve) => (begun >= n ? resolve() : waiting.push({ n, resolve })));
  instance.addHook('onRequest', (_request, reply, done) => {
    deadlines.start(reply);
    begun += 1;
    for (const w of waiting.filter((w) => begun >= w.n)) w.resolve();
    done();
  });
  instance.addHook('onResponse', (_request, reply, done) => {
    deadlines.finish(reply);
    done();
  });
  // /held answers when released; /never only if the sweep answers it.
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  instance.get('/held', async () => {
    await released;
    return { ok: true };
  });
  instance.get('/never', () => new Promise(() => undefined));
  await instance.ready();
  return { app: instance, deadlines, release, started };
}

describe('RequestDeadlines', () => {
  it('keeps the open requests only: answered ones leave from anywhere in the list, the rest are answered at the bound', async () => {
    const built = await appWithDeadlines();
    app = built.app;
    const { deadlines } = built;
    // In arrival order: never, held, never, held, held, never; the held ones leave from the middle and the end.
    const paths = ['/never', '/held', '/never', '/held', '/held', '/never'];
    const startedAt = performance.now();
    const answers = paths.map((url) => app!.inject({ method: 'GET', url }));
    await built.started(6);
    expect(deadlines.size).toBe(6);
    built.release();
    const held = await Promise.all(answers.filter((_, i) => paths[i] === '/held'));
    expect(held.map((r) => r.statusCode)).toEqual([200, 200, 200]);
    expect(deadlines.size).toBe(3);

    // Just short of the bound, nothing is answered; at it, the sweep answers the three.
    vi.advanceTimersByTime(BOUND_MS - 20);
    expect(deadlines.size).toBe(3);
    vi.advanceTimersByTime(20);
    const timedOut = await Promise.all(answers.filter((_, i) => paths[i] === '/never'));
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(BOUND_MS);
    for (const answer of timedOut) {
      expect(answer.statusCode).toBe(503);
      expect(answer.json()).toMatchObject({ code: 'REQUEST_TIMEOUT' });
    }
    // Each was taken out before its answer, whose last hook finished it again: nothing is left over.
    expect(deadlines.size).toBe(0);

    // The list is whole again: a new request enters and leaves it.
    const another = app.inject({ method: 'GET', url: '/never' });
    await built.started(7);
    expect(deadlines.size).toBe(1);
    vi.advanceTimersByTime(BOUND_MS);
    expect((await another).statusCode).toBe(503);
    expect(deadlines.size).toBe(0);
  });
});
