import { once } from 'node:events';
import type { Config } from '../config.ts';
import { coerceError } from '../errors/index.ts';
import type { Logger } from '../logger.ts';
import type { SwitchMetrics } from '../metrics/switch-metrics.ts';
import { createProducerRedis, createWorkerRedis, type Redis } from '../redis.ts';
import { withDeadline } from '../with-deadline.ts';
import { SWITCH_DEFAULT, SWITCH_NAMES, onOff, switchesChannel, switchesKey, type SwitchName } from './switch-names.ts';
import { readStoredSwitches, restoreSwitches, type StoredSwitch, type StoredSwitches, type SwitchKeys } from './switch-store.ts';

/** Each process reads the switches this often besides the announcements: one round trip a second, never one per request. */
export const SWITCHES_POLL_MS = 1000;

/** What a consumer of the switches needs: the value this process holds now (no round trip). */
export interface SwitchReader {
  isOn(name: SwitchName): boolean;
}

export type SwitchListener = (name: SwitchName, on: boolean) => void;

export interface SwitchesOptions {
  /** For the reads (HGETALL): a producer connection, which fails fast while Redis is away. */
  readonly redis: Redis;
  /** For SUBSCRIBE to the announcements; without it, changes arrive at the next poll. */
  readonly subscriber?: Redis;
  readonly keys: SwitchKeys;
  readonly logger: Logger;
  readonly metrics?: SwitchMetrics;
  /** Default SWITCHES_POLL_MS */
  readonly pollMs?: number;
  /** How long the first read waits for the connection before the process runs on the defaults. */
  readonly connectTimeoutMs: number;
  /** Closes the connections the switches own (called by close()). */
  readonly disconnect?: () => void;
}

/**
 * The switches as one process holds them. A read (one HGETALL) happens at start, at every
 * announcement of a change (pub/sub, so a change reaches every process in milliseconds) and once
 * every poll interval (so a missed announcement costs at most that long). Consumers ask isOn(),
 * which never touches Redis. Each change is logged once (info) and shown in the
 * courier_switch_on gauge.
 *
 * Redis away: the process keeps the values it read last (and logs once that it does); a process
 * that never read them runs on the defaults (on). Redis back empty (a restart of our
 * persistence-less Redis): the process writes back the values it had read, where no operator has
 * written a newer one, so a restart does not silently turn a shed feature back on.
 */
export class Switches implements SwitchReader {
  /** Resolves once the first read was tried, whether Redis answered or not. */
  readonly settled: Promise<void>;
  /** Resolves at the first read Redis answered. */
  readonly read: Promise<void>;
  readonly #opts: SwitchesOptions;
  readonly #values = new Map<SwitchName, boolean>(SWITCH_NAMES.map((name) => [name, SWITCH_DEFAULT]));
  /** What this process last read for each switch Redis had a value for: written back if Redis loses it. */
  readonly #read = new Map<SwitchName, StoredSwitch>();
  readonly #listeners = new Set<SwitchListener>();
  #settle: () => void = () => undefined;
  #firstRead: () => void = () => undefined;
  #timer: NodeJS.Timeout | undefined;
  #reading: Promise<void> | undefined;
  #again = false;
  #hasRead = false;
  #failing = false;
  #closed = false;
  #invalidSeen = '';

  constructor(opts: SwitchesOptions) {
    this.#opts = opts;
    this.settled = new Promise((resolve) => {
      this.#settle = resolve;
    });
    this.read = new Promise((resolve) => {
      this.#firstRead = resolve;
    });
    for (const name of SWITCH_NAMES) opts.metrics?.switchOn.set({ switch: name }, SWITCH_DEFAULT ? 1 : 0);
  }

  /** Whether this process has read the switches from Redis at least once. */
  get hasRead(): boolean {
    return this.#hasRead;
  }

  isOn(name: SwitchName): boolean {
    return this.#values.get(name) ?? SWITCH_DEFAULT;
  }

  values(): Record<SwitchName, 'on' | 'off'> {
    return Object.fromEntries(SWITCH_NAMES.map((name) => [name, onOff(this.isOn(name))])) as Record<SwitchName, 'on' | 'off'>;
  }

  /** Told of each change, after it is logged; returns the unsubscribe. */
  onChange(listener: SwitchListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Subscribes to the announcements, reads once and starts the poll. */
  start(): this {
    const { subscriber, keys, logger } = this.#opts;
    if (subscriber) {
      subscriber.on('message', (channel: string) => {
        if (channel === keys.channel) void this.refresh();
      });
      // A reconnected subscriber may have missed announcements meanwhile.
      subscriber.on('ready', () => void this.refresh());
      subscriber.subscribe(keys.channel).catch((error: unknown) => logger.debug({ err: coerceError(error) }, 'switches: not subscribed (the poll still reads them)'));
    }
    void this.#first();
    this.#timer = setInterval(() => void this.refresh(), this.#opts.pollMs ?? SWITCHES_POLL_MS);
    this.#timer.unref();
    return this;
  }

  /** Reads the switches now; a call while a read is in flight gets one more read after it (a change may have come meanwhile). */
  refresh(): Promise<void> {
    if (this.#reading) {
      this.#again = true;
      return this.#reading;
    }
    this.#reading = (async () => {
      try {
        do {
          this.#again = false;
          await this.#readOnce();
        } while (this.#again && !this.#closed);
      } finally {
        this.#reading = undefined;
      }
    })();
    return this.#reading;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#listeners.clear();
    await this.#reading;
    this.#opts.disconnect?.();
  }

  async #first(): Promise<void> {
    const { redis, connectTimeoutMs } = this.#opts;
    try {
      if (redis.status !== 'ready') await withDeadline(once(redis, 'ready'), connectTimeoutMs);
    } catch {
      // Redis away at start: the read below fails and says so; the poll goes on trying.
    }
    await this.refresh();
    this.#settle();
  }

  async #readOnce(): Promise<void> {
    if (this.#closed) return;
    const { redis, keys, logger, metrics } = this.#opts;
    let stored: StoredSwitches;
    try {
      stored = await readStoredSwitches(redis, keys.key);
    } catch (error) {
      if (!this.#failing) {
        this.#failing = true;
        const held = this.#hasRead ? 'keeping the values read last' : 'running on the defaults until Redis answers';
        logger.warn({ err: coerceError(error), switches: this.values() }, `switches not read (Redis away?): ${held}`);
      }
      return;
    }
    if (this.#failing) {
      this.#failing = false;
      logger.info({ switches: this.values() }, 'switches read again');
    }
    metrics?.switchesReadAt.set(Date.now() / 1000);
    const invalid = stored.invalid.join(', ');
    if (invalid !== this.#invalidSeen) {
      this.#invalidSeen = invalid;
      if (invalid) logger.warn({ key: keys.key, invalid }, `switches: ignoring fields that are not a switch set to on or off: ${invalid}`);
    }

    const lost = new Map([...this.#read].filter(([name]) => !stored.switches.has(name)));
    if (lost.size > 0) {
      logger.warn({ switches: Object.fromEntries([...lost].map(([name, s]) => [name, onOff(s.on)])) }, 'switches gone from Redis (restarted empty?): writing back the values read last');
      await restoreSwitches(redis, keys, lost).catch((error: unknown) => logger.debug({ err: coerceError(error) }, 'switches not written back; trying again at the next read'));
    }
    for (const [name, value] of stored.switches) this.#read.set(name, value);
    for (const name of SWITCH_NAMES) {
      const found = stored.switches.get(name);
      this.#apply(name, found ? found.on : lost.has(name) ? this.isOn(name) : SWITCH_DEFAULT, found);
    }
    if (!this.#hasRead) {
      this.#hasRead = true;
      this.#firstRead();
    }
  }

  #apply(name: SwitchName, on: boolean, stored: StoredSwitch | undefined): void {
    const { logger, metrics } = this.#opts;
    metrics?.switchOn.set({ switch: name }, on ? 1 : 0);
    const was = this.isOn(name);
    if (was === on) return;
    this.#values.set(name, on);
    const setAt = stored?.at ? new Date(stored.at).toISOString() : null;
    const by = stored?.by ? ` by ${stored.by}` : '';
    logger.info({ switch: name, on, was, setAt, setBy: stored?.by ?? null }, `switch ${name} turned ${onOff(on)}${by}${setAt ? ` at ${setAt}` : ''}`);
    for (const listener of this.#listeners) {
      try {
        listener(name, on);
      } catch (error) {
        logger.error({ err: coerceError(error), switch: name }, 'a switch listener failed');
      }
    }
  }
}

/**
 * The switches of one process, wired from its config: reads over `redis` when given (the process's
 * own producer connection), else over a connection of their own, and a subscriber connection for
 * the announcements; close() closes the connections they opened.
 */
export function openSwitches(
  config: Pick<Config, 'redisUrl' | 'redisTimeoutMs' | 'queuePrefix'>,
  deps: { logger: Logger; metrics?: SwitchMetrics; redis?: Redis; pollMs?: number },
): Switches {
  const redis = deps.redis ?? createProducerRedis(config);
  const subscriber = createWorkerRedis(config);
  const quiet = (error: unknown) => deps.logger.debug({ err: coerceError(error) }, 'switches redis error');
  if (!deps.redis) redis.on('error', quiet);
  subscriber.on('error', quiet);
  return new Switches({
    redis,
    subscriber,
    keys: { key: switchesKey(config), channel: switchesChannel(config) },
    logger: deps.logger,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
    ...(deps.pollMs ? { pollMs: deps.pollMs } : {}),
    connectTimeoutMs: config.redisTimeoutMs * 5,
    disconnect: () => {
      subscriber.disconnect();
      if (!deps.redis) redis.disconnect();
    },
  }).start();
}
