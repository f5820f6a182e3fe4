/**
 * `npm start`: runs every Procfile process in this one terminal with prefixed, readable logs
 * (scripts/run-processes.ts), until Ctrl-C, which stops them all with one line when they stop cleanly.
 * Production runs each Procfile line as its own process instead. When the notification provider
 * is on this machine (NOTIFY_PROVIDER_URL unset, or pointing at 127.0.0.1 / localhost), the dev
 * provider runs beside them on that port, so notifications have somewhere to go.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadConfig } from '../shared/config.ts';
import { devDashboard } from './dev-dashboard.ts';
import { runProcesses, type ProcfileProcess } from './run-processes.ts';

const config = loadConfig(process.env);
const processes: ProcfileProcess[] = readFileSync(
  new URL('../Procfile', import.meta.url),
  'utf8',
)
  .split('\n')
  .map((line) => /^([a-z][a-z0-9_-]*):\s*(.+)$/i.exec(line.trim()))
  .filter((match): match is RegExpExecArray => match !== null)
  .map(([, name, command]) => ({ name: name!, command: command! }));

const providerUrl = new URL(config.notifyProviderUrl);
const localProvider = ['127.0.0.1', 'localhost', '[::1]'].includes(providerUrl.hostname) && providerUrl.protocol === 'http:';
if (localProvider) {
  processes.push({
    name: 'provider',
    command: 'node workers/dev-provider.ts',
    env: { NOTIFY_PROVIDER_PORT: providerUrl.port || '80' },
  });
}

const dashboard = devDashboard(process.env);
// Read from the Procfile lines (`METRICS_PORT=${WORKER_METRICS_PORT:-9101} ...`), as sh will expand them.
const metricsPorts = processes
  .map((p) => ({ name: p.name, port: /METRICS_PORT=\$\{(\w+):-(\d+)\}/.exec(p.command) }))
  .filter((p) => p.port !== null)
  .map(({ name, port }) => `${name} :${process.env[port![1]!] || port![2]}`)
  .join(', ');
const base = `http://127.0.0.1:${config.port}`;
const notified = localProvider
  ? `${config.notifyProviderUrl.replace(/\/+$/, '')}/v1/messages   (the dev provider: what was sent)`
  : `${config.notifyProviderUrl}   (NOTIFY_PROVIDER_URL)`;
console.log(`
Courier is starting: ${processes.map((p) => p.name).join(', ')}
  API        ${base}/v1/orders   (key: .courier/demo-client.key)
  API docs   ${base}/docs
  dashboard  ${base}/admin/queues   (${dashboard.note})
  metrics    ${base}/metrics   (${metricsPorts})
  readiness  ${base}/readyz
  notified   ${notified}
Ctrl-C stops them all.
`);

// `node` in the Procfile lines is the Node running this (scripts/node: Node 24), not an older one on PATH.
const env = { ...process.env, ...dashboard.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty' };
// Each process bounds its own drain at SHUTDOWN_TIMEOUT_MS; past that and a margin, it is killed.
process.exitCode = await runProcesses(processes, { env, stopBoundMs: config.shutdownTimeoutMs + 5000 });
