/**
 * Preloaded into every process the benches start (bench/lib/child-processes.ts runs
 * `node --import bench/exit-with-parent-preload.ts <file>`: the fleet of
 * bench/pipeline.ts, the servers of bench/intake.ts), so the Procfile's own entrypoints (e.g.
 * workers/web.ts) run unchanged and still stop themselves (a graceful SIGTERM to self) if the
 * bench that started them dies without stopping them.
 */
import { exitWithParent } from './exit-with-parent.ts';

exitWithParent();
