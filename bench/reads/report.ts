/** The reads bench's results as it prints them: the table of every server's figures, and CPU per response. */
import { fmt, log, printTable } from '../lib/log.ts';
import type { ServerFigures } from './servers.ts';

/** One row per server: rates, latencies, statuses, bytes, CPU and where its reads were answered from. */
export function logResultsTable(figures: readonly ServerFigures[]): void {
  printTable(
    ['server', 'req/s', 'p50 ms', 'p99 ms', 'responses', 'right status', 'wrong status', 'errors', 'bytes/resp', 'server CPU', 'server µs/resp', 'load gen µs/resp', 'L1 / L2 / MySQL'],
    figures.map((f) => [
      f.name,
      fmt(f.reqPerSec),
      fmt(f.latencyMs.p50, 1),
      fmt(f.latencyMs.p99, 1),
      fmt(f.responses),
      fmt(f.statusRight),
      fmt(f.wrongStatus),
      fmt(f.errors + f.timeouts),
      fmt(f.bytesPerResponse),
      f.cpuPercent.server === null ? 'n/a' : `${fmt(f.cpuPercent.server)}%`,
      fmt(f.serverCpuUsPerResponse),
      fmt(f.loadGeneratorCpuUsPerResponse),
      f.reads ? `${fmt(f.reads.l1)} / ${fmt(f.reads.l2)} / ${fmt(f.reads.mysql)}` : 'n/a',
    ]),
    '',
  );
}

/**
 * CPU per response, server + load generator, and the ratios it makes where CPU is the limit: far
 * less at the mercy of what else runs on the machine than req/s is (information only).
 */
export function logCpuPerResponse(figures: readonly ServerFigures[]) {
  log('');
  const by = (name: string) => figures.find((f) => f.name === name);
  const cached = by('cached');
  const uncached = by('uncached');
  const hello = by('hello');
  const cpuPerResponse = (f: ServerFigures | undefined) =>
    f && f.serverCpuUsPerResponse !== null && f.loadGeneratorCpuUsPerResponse !== null ? f.serverCpuUsPerResponse + f.loadGeneratorCpuUsPerResponse : null;
  const cpuCost = Object.fromEntries(figures.map((f) => [f.name, cpuPerResponse(f)]));
  const cachedCost = cpuPerResponse(cached);
  const helloCost = cpuPerResponse(hello);
  const uncachedCost = cpuPerResponse(uncached);
  const cpuModelRatios = {
    cachedOverHello: cachedCost && helloCost ? helloCost / cachedCost : null,
    cachedOverUncached: cachedCost && uncachedCost ? uncachedCost / cachedCost : null,
  };
  log(
    `CPU per response, server + load generator: ${figures.map((f) => `${f.name} ${fmt(cpuCost[f.name])} µs`).join(', ')}` +
      (cpuModelRatios.cachedOverHello !== null || cpuModelRatios.cachedOverUncached !== null
        ? `; where CPU is the limit that makes cached ${cpuModelRatios.cachedOverUncached === null ? '' : `${fmt(cpuModelRatios.cachedOverUncached, 2)}x uncached`}` +
          `${cpuModelRatios.cachedOverUncached !== null && cpuModelRatios.cachedOverHello !== null ? ' and ' : ''}` +
          `${cpuModelRatios.cachedOverHello === null ? '' : `${fmt(cpuModelRatios.cachedOverHello * 100)}% of hello`} (information; MariaDB's and Redis's CPU left out)`
        : ''),
  );
  return { cpuCost, cpuModelRatios };
}
