/** The notifier process: the non-critical notifications queue, isolated from the order pipeline. */
import { runStandbyProcess } from '../shared/standby-process.ts';

await runStandbyProcess('notifier', 'notifications land with issue 3');
