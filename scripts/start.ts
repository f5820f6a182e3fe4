/**
 * `npm start`: runs every Procfile process in this one terminal with prefixed, readable logs.
 * Production runs each Procfile line as its own process instead.
 */
import { readFileSync } from 'node:fs';
import concurrently from 'concurrently';
import { loadConfig } from '../shared/config.ts';

const config = loadConfig(process.env);
const processes = readFileSync(new URL('../Procfile', import.meta.url), 'utf8')
  .split('\n')
  .map((line) => /^([a-z][a-z0-9_-]*):\s*(.+)$/i.exec(line.trim()))
  .filter((match): match is RegExpExecArray => match !== null)
  .map(([, name, command]) => ({ name: name!, command: command! }));

const base = `http://127.0.0.1:${config.port}`;
console.log(`
Courier is starting: ${processes.map((p) => p.name).join(', ')}
  API        ${base}/v1/orders   (key: .courier/demo-client.key)
  dashboard  ${base}/admin/queues
  metrics    ${base}/metrics
  readiness  ${base}/readyz
Ctrl-C stops them all.
`);

const { result } = concurrently(
  processes.map((p) => ({ ...p, env: { LOG_FORMAT: process.env.LOG_FORMAT ?? 'pretty' } })),
  { prefix: 'name', prefixColors: ['cyan', 'magenta', 'yellow', 'green'], killOthersOn: ['failure'], handleInput: false },
);

result.then(
  () => process.exit(0),
  () => process.exit(1),
);
