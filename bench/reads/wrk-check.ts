/**
 * The issue's own measure, beside the bench's: wrk (one thread, CONNECTIONS connections) asking each
 * server for one warm order, the servers taking turns for ROUNDS rounds. autocannon runs in Node in
 * the bench's process and spends as much CPU per request as a cached read does (see "load gen
 * µs/resp"); on two shared cores that cost is in every server's figure alike, which pulls each
 * ratio over the hello-world towards 1. wrk's own cost per request is a fraction of the server's, so
 * its ratios are close to the servers' own: the ones issue 14 measured (0.45-0.49x) and set its
 * targets against.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fmt, log, progress } from '../lib/log.ts';
import { median } from '../lib/stats.ts';
import type { ServerUnderTest } from './servers.ts';
import type { ServerName } from './settings.ts';

export interface WrkFigures {
  readonly name: ServerName;
  readonly requests: number;
  readonly seconds: number;
  readonly reqPerSec: number;
  /** Answers that were not 2xx or 3xx, and socket errors. */
  readonly bad: number;
  /** req/s of each round's turn, in round order (the hello-world's: each of its turns, in order). */
  readonly byRound: readonly number[];
  /** The hello-world's req/s around each round's turn (the mean of its turns just before and just after); absent for the hello-world itself. */
  readonly helloAround?: readonly number[];
}

export function wrkInstalled(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

/** One wrk run against `url` with `headers`, for `seconds`; killed if it outlives them by `boundS`. */
function runWrk(url: string, headers: Readonly<Record<string, string>>, seconds: number, connections: number, boundS: number): Promise<Omit<WrkFigures, 'name' | 'byRound'>> {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const backstop = setTimeout(() => child.kill('SIGKILL'), (seconds + boundS) * 1000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(backstop);
      const done = /(\d+) requests in ([\d.]+)(m?s)/.exec(out);
      if (code !== 0 || !done) return reject(new Error(`wrk ${args.join(' ')} exited ${code}: ${out.trim()}`));
      const requests = Number(done[1]);
      const measuredS = Number(done[2]) / (done[3] === 'ms' ? 1000 : 1);
      const non2xx3xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const errors = socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
      resolve({ requests, seconds: measuredS, reqPerSec: requests / measuredS, bad: non2xx3xx + errors });
    });
  });
}

/**
 * Each server in turn, `rounds` times, `sliceS` each, at the first hot order (its own request: the
 * 304 with its ETag), with a turn of the hello-world before the first and after each: every turn is
 * then compared with the hello-world's just around it (the mean of the two), seconds away rather
 * than a round away, so the machine's drift between them is small and falls on both sides alike.
 */
export async function wrkCheck(servers: readonly ServerUnderTest[], warmId: string, opts: { rounds: number; sliceS: number; connections: number; boundS: number }): Promise<WrkFigures[]> {
  const sums = new Map(servers.map((under) => [under.name, { requests: 0, seconds: 0, bad: 0, byRound: [] as number[], helloAround: [] as number[] }]));
  const turn = async (under: ServerUnderTest, round: number): Promise<number> => {
    const { path, headers } = under.load.request(warmId);
    progress(`  [wrk] round ${round + 1}/${opts.rounds} ${under.name}`, false);
    const run = await runWrk(`${under.proc.url}${path}`, headers, opts.sliceS, opts.connections, opts.boundS);
    const sum = sums.get(under.name)!;
    sum.requests += run.requests;
    sum.seconds += run.seconds;
    sum.bad += run.bad;
    sum.byRound.push(run.reqPerSec);
    return run.reqPerSec;
  };
  const hello = servers.find((under) => under.name === 'hello');
  const others = servers.filter((under) => under !== hello);
  for (let round = 0; round < opts.rounds; round++) {
    let helloBefore = hello ? await turn(hello, round) : 0;
    for (let k = 0; k < others.length; k++) {
      const under = others[(round + k) % others.length]!;
      await turn(under, round);
      if (!hello) continue;
      const helloAfter = await turn(hello, round);
      sums.get(under.name)!.helloAround.push((helloBefore + helloAfter) / 2);
      helloBefore = helloAfter;
    }
  }
  const figures = servers.map((under) => {
    const { helloAround, ...sum } = sums.get(under.name)!;
    return { name: under.name, ...sum, reqPerSec: sum.requests / sum.seconds, ...(under === hello ? {} : { helloAround }) };
  });
  for (const f of figures) log(`  [wrk] ${f.name}: ${fmt(f.reqPerSec)} req/s (${fmt(f.requests)} in ${fmt(f.seconds, 1)} s)${f.bad ? `, ${fmt(f.bad)} NOT 2xx/3xx or socket errors` : ''}`);
  return figures;
}

/**
 * Each server's wrk req/s over the bare hello-world's: the median over the rounds of its turn's
 * req/s over the hello-world's around it. The machine's speed moves by half within minutes, and a
 * burst that falls on one turn moves a ratio of sums by as much; the median of turns each paired
 * with its neighbours is left with the bursts that fall on most rounds. Empty where the hello-world
 * was not run; the hello-world's own is 1.
 */
export function wrkOverHello(figures: readonly WrkFigures[] | null): Partial<Record<ServerName, number>> {
  if (!figures?.some((f) => f.name === 'hello')) return {};
  return Object.fromEntries(figures.map((f) => [f.name, f.helloAround ? median(roundRatios(f, f.helloAround)) : 1]));
}

function roundRatios(f: WrkFigures, helloAround: readonly number[]): number[] {
  return f.byRound.map((reqPerSec, round) => reqPerSec / helloAround[round]!);
}

/** Each server's ratio of each round, for the log. */
export function logWrkRounds(figures: readonly WrkFigures[] | null): void {
  const hello = figures?.find((f) => f.name === 'hello');
  if (!figures || !hello) return;
  const lines = figures.flatMap((f) => (f.helloAround ? [`${f.name} ${roundRatios(f, f.helloAround).map((r) => `${fmt(r, 2)}x`).join(', ')}`] : []));
  log(`  [wrk] over the hello-world's turns just around it, by round (the verdict takes each one's median): ${lines.join('; ')}`);
}
