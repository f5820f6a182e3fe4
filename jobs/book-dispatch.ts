import { dispatchWindow } from '../shared/queues/job-ids.ts';
import type { JobProducer } from './producer.ts';

/**
 * Dispatch runs for zones, through the one producer and the one id rule: `next` books the window
 * open now (every priced order of the window joins one run, a no-op for a zone already booked),
 * `now` a run at once (the zone had more orders than one run takes, or an operator asked).
 */
export function dispatchBooking(producer: Pick<JobProducer, 'addMany'>, windowMs: number) {
  const book = async (zoneIds: readonly string[], atOnce: boolean) => {
    const zones = [...new Set(zoneIds)];
    if (zones.length === 0) return;
    const { windowStartMs, delayMs } = dispatchWindow(Date.now(), windowMs, atOnce);
    await producer.addMany(
      'dispatch.zone',
      zones.map((zoneId) => ({ zoneId, window: windowStartMs })),
      { delayMs },
    );
  };
  return {
    next: (zoneIds: readonly string[]) => book(zoneIds, false),
    now: (zoneIds: readonly string[]) => book(zoneIds, true),
  };
}
