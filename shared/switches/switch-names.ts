import type { Config } from '../config.ts';
import { ApiError } from '../errors/index.ts';

/**
 * The degradation switches an operator flips at run time (`npm run cli -- switches:set <name>
 * on|off`). Each names a feature: on (the default) it runs, off it is shed. What off does, and
 * who reads it, is said here once: the CLI's list and help print it.
 */
export const SWITCHES = {
  'tracking-rider': {
    readBy: 'web',
    off: "GET /v1/orders/:id/tracking answers without the rider's position (rider null, 'rider' named in missing); the ETA and the order still come",
  },
  notifications: {
    readBy: 'notifier',
    off: 'the notifier holds its jobs: they wait in the queue without spending attempts and their ledger rows stay PENDING; on again, each goes out, once',
  },
  'warm-up': {
    readBy: 'scheduler, worker',
    off: "cache warm-ups are skipped: the scheduler's WARMUP_CRON ticks enqueue nothing and the worker skips the warm-up jobs it gets (cron and web start), each saying so in its log; cache:warm from the CLI still runs",
  },
} as const satisfies Record<string, { readBy: string; off: string }>;

export type SwitchName = keyof typeof SWITCHES;

export const SWITCH_NAMES = Object.keys(SWITCHES) as SwitchName[];

/** Every switch is on (the feature runs) until an operator turns it off. */
export const SWITCH_DEFAULT = true;

export function isSwitchName(value: string): value is SwitchName {
  return Object.hasOwn(SWITCHES, value);
}

/** A switch's name as an operator typed it; an unknown one is refused (UNKNOWN_SWITCH) naming the known ones. */
export function parseSwitchName(value: string): SwitchName {
  if (isSwitchName(value)) return value;
  throw new ApiError('UNKNOWN_SWITCH', `"${value}" is not a switch; the switches are ${SWITCH_NAMES.join(', ')}`);
}

/** on or off, exactly (on: the feature runs); anything else is refused (INVALID_SWITCH_VALUE). */
export function parseSwitchValue(value: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new ApiError('INVALID_SWITCH_VALUE', `"${value}" is not on or off (on: the feature runs; off: it is shed)`);
}

export function onOff(on: boolean): 'on' | 'off' {
  return on ? 'on' : 'off';
}

/**
 * The Redis hash that holds a fleet's switches, under its queue prefix: the processes that share
 * the queues share the switches, and two fleets on one Redis (two QUEUE_PREFIX) never see each
 * other's. One key: a Redis Cluster keeps it on one node (the prefix is a hash tag).
 */
export function switchesKey(config: Pick<Config, 'queuePrefix'>): string {
  return `${config.queuePrefix}:switches`;
}

/** Where a change is announced, so every process reads it at once rather than at its next poll. */
export function switchesChannel(config: Pick<Config, 'queuePrefix'>): string {
  return `${config.queuePrefix}:switches:changed`;
}
