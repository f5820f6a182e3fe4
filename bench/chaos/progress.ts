/**
 * What the run shows while it runs: on a terminal, for the full run, a progress bar over the
 * planned time with the scenario, its phase and its traffic; otherwise (--quick, or output to a
 * file or a test) one line per phase.
 */
import { performance } from 'node:perf_hooks';
import cliProgress from 'cli-progress';
import { fmt, isTty, log } from '../lib/log.ts';
import type { OrderTraffic } from './traffic/order-traffic.ts';

export class Progress {
  private readonly bar: cliProgress.SingleBar | null;
  private readonly t0 = performance.now();
  private readonly totalS: number;
  private payload = { scenario: '', phase: '', accepted: '0', refused: '0' };

  constructor(opts: { readonly bar: boolean; readonly plannedS: number }) {
    this.totalS = Math.max(1, Math.round(opts.plannedS));
    this.bar =
      opts.bar && isTty
        ? new cliProgress.SingleBar(
            { format: '  {bar} {value}/{total} s | {scenario}: {phase} | 202 {accepted}, refused {refused}', hideCursor: true, clearOnComplete: true, etaBuffer: 50 },
            cliProgress.Presets.shades_classic,
          )
        : null;
    this.bar?.start(this.totalS, 0, this.payload);
  }

  phase(scenario: string, phase: string): void {
    const changed = phase.split(':')[0] !== this.payload.phase.split(':')[0] || scenario !== this.payload.scenario;
    this.payload = { ...this.payload, scenario, phase };
    if (this.bar) this.update();
    else if (changed) log(`  [${scenario} ${fmt((performance.now() - this.t0) / 1000, 1)} s] ${phase}`);
  }

  traffic(traffic: OrderTraffic): void {
    if (!this.bar) return;
    const refused = traffic.answers.filter((a) => a.status !== 202).length;
    this.payload = { ...this.payload, accepted: fmt(traffic.acceptedIds().length), refused: fmt(refused) };
    this.update();
  }

  /** Log lines go above the bar (it is redrawn). */
  log(line: string): void {
    if (!this.bar) return log(line);
    this.bar.stop();
    log(line);
    this.bar.start(this.totalS, this.elapsed(), this.payload);
  }

  stop(): void {
    this.bar?.stop();
  }

  private elapsed(): number {
    return Math.min(this.totalS, Math.round((performance.now() - this.t0) / 1000));
  }

  private update(): void {
    this.bar?.update(this.elapsed(), this.payload);
  }
}
