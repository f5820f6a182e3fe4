/**
 * Preloaded into the fleet processes bench/pipeline.ts starts
 * (`node --import tsx --import bench/exit-with-parent-preload.ts workers/web.ts`), so the Procfile's
 * own entrypoints run unchanged and still stop themselves (a graceful SIGTERM to self) if the bench
 * that started them dies without stopping them.
 */
import { exitWithParent } from './exit-with-parent.ts';

exitWithParent();
