// A worker thread's entry for the fleet simulation: registers tsx, then runs the module its
// workerData names (fleet/lambda-thread.ts or fleet/clients-thread.ts).
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.module);
