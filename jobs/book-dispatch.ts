import { dispatchWindow } from '../shared/queues/job-ids.ts';
import type { JobProducer } from './producer.ts';

/**
 * Dispatch runs for zones, through the one producer and the one id rule: `next` books the window
 * open now (every priced order of the window joins one run: a no-op for a zone already booked),
 * `now` a run at once (the zone had more orders than one run takes, or an operator asked).
 *
 * One per process: it remembers the window it last booked for each zone, so the many price
 * batches of one window book each zone once from this process instead of each asking Redis for a
 * no-op (an add is a Lua call). Another process's booking of the same window is still one job.
 */
export class DispatchBooking {
  private readonly producer: Pick<JobProducer, 'addMany'>;
  private readonly windowMs: number;
  /** Per zone, the window this process booked last. */
  private readonly booked = new Map<string, number>();

  constructor(producer: Pick<JobProducer, 'addMany'>, windowMs: number) {
    this.producer = producer;
    this.windowMs = windowMs;
  }

  async next(zoneIds: readonly string[]): Promise<void> {
    const { windowStartMs, delayMs } = dispatchWindow(Date.now(), this.windowMs, false);
    const zones = [...new Set(zoneIds)].filter((zoneId) => this.booked.get(zoneId) !== windowStartMs);
    if (zones.length === 0) return;
    await this.producer.addMany(
      'dispatch.zone',
      zones.map((zoneId) => ({ zoneId, window: windowStartMs })),
      { delayMs },
    );
    for (const zoneId of zones) this.booked.set(zoneId, windowStartMs);
  }

  async now(zoneIds: readonly string[]): Promise<void> {
    const zones = [...new Set(zoneIds)];
    if (zones.length === 0) return;
    const { windowStartMs } = dispatchWindow(Date.now(), this.windowMs, true);
    await this.producer.addMany(
      'dispatch.zone',
      zones.map((zoneId) => ({ zoneId, window: windowStartMs })),
    );
  }
}
