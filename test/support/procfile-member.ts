/**
 * A stand-in Procfile process for test/run-processes.test.ts: prints `ready`, then behaves as its
 * argument says: `clean` drains and exits 0 on SIGTERM, `dies` exits 3 on its own soon after
 * `ready`, `quits` exits 0 on its own, `unclean` exits 2 on SIGTERM. It also exits when its
 * runner is gone, so a failed test leaves nothing behind (the runner puts each process in a
 * group of its own).
 */
const mode = process.argv[2] ?? 'clean';
const runner = process.ppid;

// The handler before `ready`: a write to a pipe is synchronous, so the runner may read `ready` and
// send SIGTERM before the next statement runs (a loaded machine did), and without a handler yet
// the signal's default action kills the process.
process.on('SIGTERM', () => {
  console.log('draining');
  setTimeout(() => process.exit(mode === 'unclean' ? 2 : 0), 50);
});
console.log(`ready (${mode})`);
if (mode === 'dies' || mode === 'quits') setTimeout(() => process.exit(mode === 'dies' ? 3 : 0), 100);
setInterval(() => {
  if (process.ppid !== runner) process.exit(1);
}, 200);
