/**
 * For the bench's server processes: if the bench that started them dies without stopping them
 * (SIGKILL, a crash), they stop themselves (a SIGTERM to self, so the usual graceful close runs)
 * instead of lingering. The bench passes its pid as BENCH_PARENT_PID; checked once a second.
 */
export function exitWithParent(): void {
  const parent = Number(process.env.BENCH_PARENT_PID);
  if (!Number.isInteger(parent) || parent <= 1) return;
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
