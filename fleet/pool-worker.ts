// The Lambda side of the fleet simulation, in a worker thread of its own: the containers'
// CPU is then not queued behind ten thousand clients' (in Lambda each container has its
// own), and the clients' behind theirs. The main thread starts it (`startLambda`) and asks
// it for its stats; it serves API Gateway on a loopback port.

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { loadConfig } from '../lambda/config';
import { LambdaPool, serveApiGateway, type PoolStats } from './lambda-pool';
import { SimClock, type SimClockStart } from './sim-clock';

interface Settings {
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
  close(): Promise<PoolStats>;
}

/** Starts the worker and waits for its API Gateway URL. */
export async function startLambda(settings: Settings): Promise<LambdaThread> {
  const worker = new Worker(new URL('./pool-worker.mjs', import.meta.url), { workerData: settings });
  const replies: ((reply: Reply) => void)[] = [];
  worker.on('message', (reply: Reply) => replies.shift()?.(reply));
  const next = () => new Promise<Reply>((resolve, reject) => {
    replies.push(resolve);
    worker.once('error', reject);
  });
  const ready = (await next()) as Extract<Reply, { type: 'ready' }>;
  const ask = async (request: Request): Promise<Reply> => {
    const reply = next();
    worker.postMessage(request);
    return reply;
  };
  return {
    url: ready.url,
    stats: async () => ((await ask({ type: 'stats' })) as Extract<Reply, { type: 'stats' }>).stats,
    close: async () => {
      const { stats } = (await ask({ type: 'stats' })) as Extract<Reply, { type: 'stats' }>;
      await ask({ type: 'close' });
      await worker.terminate();
      return stats;
    },
  };
}

async function serveInWorker(settings: Settings): Promise<void> {
  // The containers' SDK clients read this thread's environment: the stand-in, and keys it takes.
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

if (!isMainThread && (workerData as Settings | undefined)?.env !== undefined) void serveInWorker(workerData as Settings);
