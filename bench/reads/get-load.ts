/** The read load (autocannon GETs of ids drawn from the hot set, as the server's Load asks, stopped cleanly), the Redis server's pid and how busy the machine is. */
import { performance } from 'node:perf_hooks';
import autocannon, { type Client, type RequestParams, type Result } from 'autocannon';
import { Redis } from 'ioredis';
import { stopCleanlyAfter } from '../lib/clean-stop.ts';
import { prng } from '../lib/prng.ts';
import { readMachineCpuMs, readProcCpuMs } from '../lib/proc-stats.ts';
import type { Load } from './loads.ts';
import { CONNECTIONS, LOAD_DRAIN_BOUND_S } from './settings.ts';

// The read load: the server's request for ids drawn from the hot set

export interface GetLoadRun {
  readonly result: Result;
  /** The counted part: its start to the last response received, in seconds. */
  readonly windowS: number;
  /** Requests sent (the unmeasured lead-in's too). */
  readonly sent: number;
  /** Counted responses (after the lead-in), their bytes, and how many had the expected status. */
  readonly responses: number;
  readonly bytes: number;
  /** Responses with the status the load expects (200, or 304 for the conditional GET). */
  readonly statusRight: number;
  readonly unanswered: number;
  readonly drained: boolean;
}

/**
 * autocannon at full speed for `unmeasuredS` + `seconds`, then a clean stop: every connection
 * finishes the request it has out. Only what answers after the first `unmeasuredS` is counted,
 * `onMeasuring` called at that moment; the load goes on without a pause, unlike a load of its own
 * before (whose stop and the next one's start left the server idle for up to a second, long enough
 * for the L1 copies it warmed to expire together). Each counted response's latency (ms, as
 * autocannon measures it) goes into `latencies` when given.
 */
export function runGetLoad(opts: {
  url: string;
  load: Load;
  hot: readonly string[];
  seconds: number;
  seed: number;
  unmeasuredS?: number;
  onMeasuring?: () => void;
  latencies?: number[];
  progressLabel?: string;
}): Promise<GetLoadRun> {
  const clients: Client[] = [];
  const random = prng(opts.seed);
  const next = () => opts.load.request(opts.hot[Math.floor(random() * opts.hot.length)]!);
  const unmeasuredS = opts.unmeasuredS ?? 0;
  let measuring = unmeasuredS === 0;
  let answered = 0;
  let responses = 0;
  let statusRight = 0;
  let bytes = 0;
  let lastResponseAt = 0;
  return new Promise<GetLoadRun>((resolveRun, rejectRun) => {
    let startedAt = performance.now();
    if (measuring) opts.onMeasuring?.();
    const leadIn = measuring
      ? undefined
      : setTimeout(() => {
          measuring = true;
          startedAt = performance.now();
          opts.onMeasuring?.();
        }, unmeasuredS * 1000);
    const instance = autocannon(
      {
        url: opts.url,
        connections: CONNECTIONS,
        pipelining: 1,
        // A backstop only: the timer below stops the load; this cuts off whatever is still out.
        duration: unmeasuredS + opts.seconds + LOAD_DRAIN_BOUND_S,
        timeout: 10,
        requests: [
          {
            method: 'GET',
            ...next(),
            setupRequest: (request: RequestParams) => {
              const { path, headers } = next();
              request.path = path;
              request.headers = headers;
              return request;
            },
          },
        ],
        setupClient: (client: Client) => {
          clients.push(client);
        },
      },
      (error, result) => {
        cleanStop.dispose();
        clearTimeout(leadIn);
        if (error) return rejectRun(error);
        const sent = clients.reduce((sum, client) => sum + client.reqsMade, 0);
        const unanswered = sent - answered;
        resolveRun({ result, windowS: (lastResponseAt - startedAt) / 1000, sent, responses, statusRight, bytes, unanswered, drained: cleanStop.stopping && unanswered === 0 });
      },
    );
    instance.on('response', (_client: Client, statusCode: number, responseBytes: number, responseTimeMs: number) => {
      answered += 1;
      if (!measuring) return;
      responses += 1;
      bytes += responseBytes;
      if (statusCode === opts.load.status) statusRight += 1;
      opts.latencies?.push(responseTimeMs);
      lastResponseAt = performance.now();
    });
    const cleanStop = stopCleanlyAfter({
      clients,
      seconds: unmeasuredS + opts.seconds,
      startedAt,
      responses: () => responses,
      ...(opts.progressLabel === undefined ? {} : { progressLabel: opts.progressLabel }),
    });
  });
}

/** The pid of the Redis the bench uses (INFO server), when it runs on this machine; null otherwise. */
export async function redisServerPid(redis: Redis): Promise<number | null> {
  const match = /^process_id:(\d+)/m.exec(await redis.info('server'));
  const pid = match?.[1] === undefined ? null : Number(match[1]);
  return pid !== null && readProcCpuMs(pid) !== null ? pid : null;
}

/** How busy the whole machine is over the next `ms`, in % of one core (all cores: up to 100 x cores). */
export async function machineBusyPercent(ms: number): Promise<number | null> {
  const before = readMachineCpuMs();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = readMachineCpuMs();
  return before && after ? ((after.busyMs - before.busyMs) / ms) * 100 : null;
}
