/**
 * The intake bench's servers, each its own process so the load generator never shares its event
 * loop: Courier's web process as the Procfile runs it, and three references of the bench's own.
 */
import { httpOk, startBenchProcess, type BenchProcess } from '../lib/bench-process.ts';
import { fleetCommands } from '../lib/fleet/procfile.ts';
import { execLine } from '../lib/fleet/fleet.ts';
import { freePort } from '../lib/process/free-port.ts';
import { nodeArgsFor } from '../lib/process/line-process.ts';

export type ServerName = 'naive' | 'courier' | 'echo' | 'hello';
export const ALL_SERVERS: readonly ServerName[] = ['naive', 'courier', 'echo', 'hello'];

/** What each one is, as the report says it. */
export const SERVER_ROLES: Record<ServerName, string> = {
  naive: 'bench/intake/naive-server.ts: validate, one INSERT, one queue.add, 202 per request',
  courier: "workers/web.ts, the Procfile's web line: Courier's intake",
  echo: 'bench/intake/echo-server.ts: Fastify parsing the same body and answering 202, nothing stored (the reference of issue 10)',
  hello: 'bench/intake/hello-server.ts: Fastify answering a constant (the ceiling)',
};

/** The servers that write orders (their rows are checked against the 202s). */
export const isIntake = (name: ServerName) => name === 'naive' || name === 'courier';

export interface RunningServer extends BenchProcess {
  readonly url: string;
}

export async function startServer(name: ServerName, env: NodeJS.ProcessEnv): Promise<RunningServer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const serverEnv = { ...process.env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', LOG_FORMAT: 'json', ...env };
  const own = { naive: 'naive-server.ts', echo: 'echo-server.ts', hello: 'hello-server.ts' } as const;
  // Courier runs from its Procfile line; Courier logs its ready line at info, so /readyz decides.
  const proc =
    name === 'courier'
      ? await startBenchProcess({ name, command: 'sh', args: ['-c', execLine(fleetCommands().get('web')!)], env: serverEnv, readyLine: /web listening/, probe: () => httpOk(`${url}/readyz`), timeoutMs: 60_000 })
      : await startBenchProcess({ name, command: process.execPath, args: nodeArgsFor(`bench/intake/${own[name]}`), env: serverEnv, readyLine: /listening on http:/, timeoutMs: 60_000 });
  return Object.assign(proc, { url });
}
