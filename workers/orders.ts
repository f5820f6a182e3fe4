/** The worker process: BullMQ workers of the critical order pipeline (pricing, dispatch). */
import { runStandbyProcess } from '../shared/standby-process.ts';

await runStandbyProcess('worker', 'the pricing and dispatch pipeline lands with issue 3; orders wait CREATED in MySQL and on the orders queue');
