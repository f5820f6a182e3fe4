/**
 * Scenario 4: the notification provider slow (past NOTIFY_TIMEOUT_MS: every call times out), then
 * failing half its messages, then down, then back. The intake and the order pipeline do not feel it
 * (notifications have their own queue and process); each call costs a bounded timeout; once the
 * provider is back every notification owed is sent, exactly once.
 */
import type { Scenario } from '../scenario.ts';
import { providerView } from '../checks.ts';

async function control(providerUrl: string, settings: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${providerUrl}/control`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(settings), signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`POST /control ${JSON.stringify(settings)} answered ${response.status}: ${await response.text()}`);
}

export function providerOutage(): Scenario {
  let failuresDuring = 0;
  return {
    key: 'provider',
    title: 'provider slow, failing, down, back',
    refusals: [],
    recovers: true,
    async fault(ctx) {
      const url = ctx.world.fleet.providerUrl;
      const third = ctx.s.faultSeconds / 3;
      const before = (await providerView(url)).stats;
      const delayMs = Math.round(1.5 * ctx.world.fleetConfig.notifyTimeoutMs);
      try {
        ctx.phase(`provider slow (${delayMs} ms a call)`);
        await control(url, { delayMs });
        await ctx.hold(third);
        ctx.phase('provider failing half its messages');
        await control(url, { delayMs: 0, failRate: 0.5 });
        await ctx.hold(third);
        ctx.phase('provider down');
        await control(url, { failRate: 0, down: true });
        await ctx.hold(third);
      } finally {
        await control(url, { delayMs: 0, failRate: 0, down: false });
      }
      const after = (await providerView(url)).stats;
      failuresDuring = after.failures - before.failures;
      ctx.note(`provider: ${after.requests - before.requests} calls during the fault, ${failuresDuring} failed (500/503), ${after.deliveries - before.deliveries} messages delivered; slow calls (${delayMs} ms) timed out at NOTIFY_TIMEOUT_MS ${ctx.world.fleetConfig.notifyTimeoutMs}`);
    },
    async checks() {
      return [{ check: 'the notifier met the failing provider', found: `${failuresDuring} failed calls or messages`, ok: failuresDuring > 0 }];
    },
  };
}
