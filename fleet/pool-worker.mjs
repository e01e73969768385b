// The worker thread's entry: registers tsx, then runs fleet/pool-worker.ts (its workerData says what to serve).
import { register } from 'tsx/esm/api';

register();
await import('./pool-worker.ts');
