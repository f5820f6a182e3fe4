import type { Redis } from '../redis.ts';
import { SWITCH_DEFAULT, SWITCH_NAMES, isSwitchName, onOff, type SwitchName } from './switch-names.ts';

/**
 * How the switches sit in Redis: one hash per fleet (switchesKey), three fields per switch that
 * was ever set: `<name>` on|off, `<name>:at` when (ms since the epoch), `<name>:by` who. A switch
 * with no field is at its default (on). Every change is announced on switchesChannel.
 */

/** One switch as Redis holds it. */
export interface StoredSwitch {
  readonly on: boolean;
  /** When it was last set, in ms since the epoch (null: not known). */
  readonly at: number | null;
  /** Who set it (user@host of the CLI). */
  readonly by: string | null;
}

export interface StoredSwitches {
  /** The switches that have a value in Redis; the others are at their default. */
  readonly switches: ReadonlyMap<SwitchName, StoredSwitch>;
  /** Fields that hold something other than on or off (written by hand?): ignored, reported. */
  readonly invalid: readonly string[];
}

export interface SwitchKeys {
  readonly key: string;
  readonly channel: string;
}

export function parseStoredSwitches(hash: Readonly<Record<string, string>>): StoredSwitches {
  const switches = new Map<SwitchName, StoredSwitch>();
  const invalid: string[] = [];
  for (const [field, value] of Object.entries(hash)) {
    if (field.includes(':')) continue; // an :at or :by field, read with its switch
    if (!isSwitchName(field) || (value !== 'on' && value !== 'off')) {
      invalid.push(`${field}=${value}`);
      continue;
    }
    const at = Number(hash[`${field}:at`]);
    switches.set(field, { on: value === 'on', at: Number.isFinite(at) && at > 0 ? at : null, by: hash[`${field}:by`] ?? null });
  }
  return { switches, invalid };
}

/** Every switch in one round trip (HGETALL). */
export async function readStoredSwitches(redis: Redis, key: string): Promise<StoredSwitches> {
  return parseStoredSwitches(await redis.hgetall(key));
}

/**
 * Sets one switch and announces it, in one transaction (MULTI: the three fields, then PUBLISH),
 * unless it already has that value: then nothing is written. Resolves with what it was before.
 */
export async function writeSwitch(
  redis: Redis,
  keys: SwitchKeys,
  change: { name: SwitchName; on: boolean; by: string; at?: number },
): Promise<{ before: StoredSwitch | undefined; changed: boolean; at: number }> {
  const { name, on, by } = change;
  const [value, at, who] = await redis.hmget(keys.key, name, `${name}:at`, `${name}:by`);
  const before = value === 'on' || value === 'off' ? { on: value === 'on', at: at ? Number(at) : null, by: who ?? null } : undefined;
  const now = change.at ?? Date.now();
  if (before?.on === on) return { before, changed: false, at: before.at ?? now };
  const results = await redis
    .multi()
    .hset(keys.key, name, onOff(on), `${name}:at`, String(now), `${name}:by`, by)
    .publish(keys.channel, name)
    .exec();
  const failed = results?.find(([error]) => error);
  if (!results || failed) throw failed?.[0] ?? new Error(`switch ${name} not written (the transaction was aborted)`);
  return { before, changed: true, at: now };
}

/**
 * Writes back switches Redis lost (a restart of our persistence-less Redis empties it) as a
 * process last read them: only where the field is still missing (HSETNX), so an operator's newer
 * value always wins, then announces it.
 */
export async function restoreSwitches(redis: Redis, keys: SwitchKeys, lost: ReadonlyMap<SwitchName, StoredSwitch>): Promise<void> {
  if (lost.size === 0) return;
  const transaction = redis.multi();
  for (const [name, stored] of lost) {
    transaction.hsetnx(keys.key, name, onOff(stored.on));
    if (stored.at !== null) transaction.hsetnx(keys.key, `${name}:at`, String(stored.at));
    if (stored.by !== null) transaction.hsetnx(keys.key, `${name}:by`, stored.by);
  }
  transaction.publish(keys.channel, [...lost.keys()].join(','));
  await transaction.exec();
}

/** Every switch with its value: the one Redis holds, or the default. */
export function allSwitches(stored: StoredSwitches): { name: SwitchName; on: boolean; stored: StoredSwitch | undefined }[] {
  return SWITCH_NAMES.map((name) => {
    const found = stored.switches.get(name);
    return { name, on: found?.on ?? SWITCH_DEFAULT, stored: found };
  });
}
