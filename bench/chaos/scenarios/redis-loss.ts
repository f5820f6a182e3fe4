/**
 * Scenario 2: Redis loses everything twice: FLUSHALL mid-run, then a crash (SIGKILL of our
 * persistence-less Redis) and a restart, empty. The intake keeps answering 202 (MySQL is the
 * outbox); the reconciler puts back every batch Redis lost; nothing is done twice.
 */
import { Redis } from 'ioredis';
import type { Scenario } from '../scenario.ts';

export function redisLoss(): Scenario {
  let flushedKeys = -1;
  let restarted = false;
  return {
    key: 'redis',
    title: 'Redis FLUSHALL, then restart',
    refusals: [],
    recovers: true,
    async fault(ctx) {
      const { redis } = ctx.world;
      const admin = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
      try {
        await admin.connect();
        const before = await admin.dbsize();
        ctx.phase('FLUSHALL');
        await admin.flushall();
        flushedKeys = before;
        ctx.note(`FLUSHALL: ${before} keys gone (queues, jobs, cache, locks)`);
      } finally {
        admin.disconnect();
      }
      await ctx.hold(ctx.s.faultSeconds * 0.4);
      ctx.phase('Redis down (SIGKILL)');
      await redis.crash();
      await ctx.hold(ctx.s.faultSeconds * 0.6);
      ctx.phase('Redis restarting, empty');
      await redis.restart();
      restarted = true;
      ctx.note(`redis-server killed, down ${(ctx.s.faultSeconds * 0.6).toFixed(1)} s, restarted empty`);
    },
    async checks() {
      return [{ check: 'Redis was flushed and restarted', found: `FLUSHALL of ${flushedKeys} keys, ${restarted ? 'restarted' : 'not restarted'}`, ok: flushedKeys > 0 && restarted }];
    },
  };
}
