// The Lambda side of the fleet simulation, in a worker thread of its own: the containers'
// CPU is then not queued behind ten thousand clients' (in Lambda each container has its
// own). It serves API Gateway on a loopback port (fleet/lambda-pool.ts).

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from '../lambda/config';
import { LambdaPool, serveApiGateway, type PoolStats } from './lambda-pool';
import { SimClock, type SimClockStart } from './sim-clock';
import { startThread } from './threads';

export interface LambdaSettings {
  /** The function's environment: its configuration and the SDK's (the stand-in's URL, keys). */
  readonly env: Record<string, string>;
  readonly clock: SimClockStart;
  readonly concurrencyCap: number;
  readonly coldStartMs: number;
  readonly integrationTimeoutMs: number;
}

type Request = { readonly type: 'stats' } | { readonly type: 'close' };
type Reply = { readonly type: 'ready'; readonly url: string } | { readonly type: 'stats'; readonly stats: PoolStats } | { readonly type: 'closed' };

export interface LambdaThread {
  readonly url: string;
  stats(): Promise<PoolStats>;
  /** Stops serving; the stats at the end. */
  close(): Promise<PoolStats>;
}

export async function startLambda(settings: LambdaSettings): Promise<LambdaThread> {
  const thread = startThread<Request, Reply>(new URL(import.meta.url), { settings });
  const { url } = (await thread.ready) as Extract<Reply, { type: 'ready' }>;
  const stats = async () => ((await thread.ask({ type: 'stats' })) as Extract<Reply, { type: 'stats' }>).stats;
  return {
    url,
    stats,
    close: async () => {
      const last = await stats();
      await thread.ask({ type: 'close' });
      await thread.terminate();
      return last;
    },
  };
}

async function serve(settings: LambdaSettings): Promise<void> {
  // The containers' SDK clients read this thread's environment.
  Object.assign(process.env, settings.env);
  const clock = SimClock.resume(settings.clock);
  const pool = new LambdaPool({
    config: loadConfig(settings.env),
    concurrencyCap: settings.concurrencyCap,
    coldStartMs: settings.coldStartMs,
    compression: clock.k,
    overrides: { clock },
  });
  const gateway = await serveApiGateway(pool, settings.integrationTimeoutMs / clock.k);
  parentPort!.on('message', (request: Request) => {
    if (request.type === 'stats') parentPort!.postMessage({ type: 'stats', stats: pool.stats() } satisfies Reply);
    else void gateway.close().then(() => parentPort!.postMessage({ type: 'closed' } satisfies Reply));
  });
  parentPort!.postMessage({ type: 'ready', url: gateway.url } satisfies Reply);
}

if (!isMainThread && (workerData as { module?: string }).module === import.meta.url) void serve((workerData as { settings: LambdaSettings }).settings);
