// Preloaded into every process a bench starts (bench/lib/bench-process.ts puts it in NODE_OPTIONS),
// so the Procfile's own entrypoints run unchanged and still stop themselves (a graceful SIGTERM to
// self) if the bench that started them dies without stopping them (SIGKILL, a crash). Plain
// JavaScript: it loads before any TypeScript loader does. The bench's pid is BENCH_PARENT_PID.
const parent = Number(process.env.BENCH_PARENT_PID);
if (Number.isInteger(parent) && parent > 1) {
  const timer = setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      clearInterval(timer);
      process.kill(process.pid, 'SIGTERM');
    }
  }, 1000);
  timer.unref();
}
