/**
 * The option parsers of the operator commands: each refuses a bad value with a one-line reason
 * (commander prints it and exits 1) before the command touches anything.
 */
import { InvalidArgumentError } from 'commander';
import { isIdString } from '../../shared/ids.ts';
import { FAILED_STATUSES, type FailedStatus } from '../../shared/orders/state-machine.ts';
import { STUCK_STATUSES, type StuckStatus } from '../../shared/orders/stuck-orders.ts';

export const DEFAULT_OLDER_THAN_MS = 60_000;
export const DEFAULT_LIST_LIMIT = 20;
export const MAX_IDS = 10_000;
/** The default of --state, recognised by identity so a first --state replaces it instead of adding to it. */
export const ALL_STUCK_STATUSES: StuckStatus[] = [...STUCK_STATUSES];

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_DURATION_MS = 365 * DURATION_UNITS_MS.d;

/** 30s, 10m, 2h, 1d (and ms), at most 365d. */
export function duration(value: string): number {
  const match = /^(\d{1,12})(ms|s|m|h|d)$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError('must be a duration like 30s, 10m, 2h or 1d');
  const ms = Number(match[1]) * DURATION_UNITS_MS[match[2] as keyof typeof DURATION_UNITS_MS];
  if (ms > MAX_DURATION_MS) throw new InvalidArgumentError('must be at most 365d');
  return ms;
}

export function positiveInt(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || parsed < 1 || parsed > 100_000) throw new InvalidArgumentError('must be an integer from 1 to 100000');
  return parsed;
}

function statesIn<T extends string>(value: string, allowed: readonly T[]): T[] {
  const names = value.split(',').map((name) => name.trim().toUpperCase()).filter((name) => name !== '');
  if (names.length === 0) throw new InvalidArgumentError(`must be one of ${allowed.join(', ')}`);
  for (const name of names) {
    if (!(allowed as readonly string[]).includes(name)) throw new InvalidArgumentError(`"${name}" is not one of ${allowed.join(', ')}`);
  }
  return names as T[];
}

/** --state of orders:stuck: repeatable, space or comma separated, any case. */
export function stuckStates(value: string, previous: StuckStatus[] | undefined): StuckStatus[] {
  const earlier = previous === undefined || previous === ALL_STUCK_STATUSES ? [] : previous;
  return [...new Set([...earlier, ...statesIn(value, STUCK_STATUSES)])];
}

/** --state of orders:redrive: exactly one failure state. */
export function failedState(value: string): FailedStatus {
  const states = statesIn(value, FAILED_STATUSES);
  if (states.length !== 1) throw new InvalidArgumentError(`must be one state: ${FAILED_STATUSES.join(' or ')}`);
  return states[0]!;
}

/** --ids: comma separated order ids, repeatable, at most MAX_IDS in all. */
export function idList(value: string, previous: string[] | undefined): string[] {
  const ids = value.split(',').map((id) => id.trim()).filter((id) => id !== '');
  if (ids.length === 0) throw new InvalidArgumentError('must list at least one order id');
  for (const id of ids) {
    if (!isIdString(id)) throw new InvalidArgumentError(`"${id}" is not an order id (a positive 64-bit decimal number)`);
  }
  const all = [...new Set([...(previous ?? []), ...ids])];
  if (all.length > MAX_IDS) throw new InvalidArgumentError(`at most ${MAX_IDS} ids at a time`);
  return all;
}
