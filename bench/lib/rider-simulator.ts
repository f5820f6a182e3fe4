import { setTimeout as sleep } from 'node:timers/promises';
import type { Db } from '../../shared/db.ts';
import { log } from './log.ts';

/**
 * The rider simulator (bench-only): every `resetMs` every rider finishes what it carries (one
 * `UPDATE riders SET active_orders = 0`), standing in for deliveries, so riders of a realistic
 * capacity never run out over a long run.
 */
export class RiderSimulator {
  resets = 0;
  ridersFreed = 0;
  private stopped = false;
  private loop: Promise<void> | undefined;

  private readonly db: Db;
  private readonly resetMs: number;

  constructor(
    db: Db,
    resetMs: number,
  ) {
    this.db = db;
    this.resetMs = resetMs;
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        try {
          this.ridersFreed += await this.db('riders').where('active_orders', '>', 0).update({ active_orders: 0 });
          this.resets += 1;
        } catch (error) {
          log(`  bench: the rider simulator's reset failed: ${error instanceof Error ? error.message : String(error)}`);
        }
        await sleep(this.resetMs); // the simulated deliveries' pace, not synchronisation
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}
