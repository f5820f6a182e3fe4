/** The scheduler process: node-cron ticks that only enqueue maintenance jobs. */
import { runStandbyProcess } from '../shared/standby-process.ts';

await runStandbyProcess('scheduler', 'compensation, warm-up and reconcile ticks land with issues 4 and 5');
