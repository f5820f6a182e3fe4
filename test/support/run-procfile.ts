/**
 * `npm start`'s runner (scripts/run-processes.ts) over stand-in processes, for
 * test/run-processes.test.ts: each argument `name=mode` is one Procfile line running
 * test/support/procfile-member.ts with that mode.
 */
import { runProcesses } from '../../scripts/run-processes.ts';

const processes = process.argv.slice(2).map((arg) => {
  const [name, mode] = arg.split('=');
  return { name: name!, command: `node test/support/procfile-member.ts ${mode ?? 'clean'}` };
});
process.exitCode = await runProcesses(processes, { env: process.env, stopBoundMs: 5000 });
