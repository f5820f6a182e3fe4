/**
 * Scenario 5: duplicates and bad requests at the orders' rate, beside them: repeats of accepted
 * keys, racing pairs on a new key, a key reused with another body, malformed and schema-breaking
 * bodies, a missing key, an oversized body, no or an unknown API key, an unknown merchant. Each
 * must get the contract's answer, and none may write anything (the common checks count the rows).
 */
import { BadRequests } from '../traffic/bad-requests.ts';
import type { Scenario } from '../scenario.ts';

export function badRequests(): Scenario {
  let bad: BadRequests | null = null;
  const totals = () => {
    const tallies = [...(bad?.tallies.values() ?? [])];
    return { right: tallies.reduce((n, t) => n + t.right, 0), total: tallies.reduce((n, t) => n + t.sent - t.limited, 0) };
  };
  return {
    key: 'requests',
    title: 'duplicates and bad requests',
    refusals: [],
    recovers: false,
    async fault(ctx) {
      const { world } = ctx;
      bad = new BadRequests(world.fleet.webUrl, ctx.traffic, {
        body: world.bodies[0]!,
        bodyLimitBytes: world.fleetConfig.bodyLimitBytes,
        boundMs: ctx.s.requestBoundMs,
        keyPrefix: `chaos-bad-${Date.now()}`,
      });
      ctx.phase(`${bad.kindList.length} kinds of duplicate and bad request at ${ctx.s.rate}/s`);
      bad.start(ctx.s.rate);
      await ctx.hold(ctx.s.faultSeconds);
      await bad.stop();
    },
    async checks(ctx) {
      const tallies = bad?.tallies ?? new Map();
      const kinds = bad?.kindList ?? [];
      const wrong = [...tallies].filter(([, t]) => t.wrong.size > 0);
      const limited = [...tallies.values()].reduce((n, t) => n + t.limited, 0);
      for (const kind of kinds) {
        const t = tallies.get(kind.name)!;
        ctx.note(`${kind.name}: ${t.right} of ${t.sent} got ${kind.expected}${t.limited ? `, ${t.limited} rate limited (429)` : ''}${t.wrong.size ? `; instead: ${[...t.wrong].map(([w, n]) => `${n} x ${w}`).join(', ')}` : ''}`);
      }
      const { right, total } = totals();
      return [
        {
          check: 'every duplicate and bad request got the contract\'s answer',
          found: wrong.length ? wrong.map(([name, t]) => `${name}: ${[...t.wrong].map(([w, n]) => `${n} x ${w}`).join(', ')}`).join('; ') : `${right} of ${total}${limited ? ` (and ${limited} rate limited)` : ''}`,
          ok: wrong.length === 0 && total > 0,
        },
        { check: 'every kind was sent', found: `${kinds.filter((k) => (tallies.get(k.name)?.sent ?? 0) > 0).length} of ${kinds.length} kinds`, ok: kinds.every((k) => (tallies.get(k.name)?.sent ?? 0) > 0) },
      ];
    },
    rightCodes: () => totals(),
    extraAnswers: () => bad?.answers ?? [],
  };
}
