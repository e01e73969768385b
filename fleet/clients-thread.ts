// The fleet's instances and tasks, in a worker thread of their own: one DssssClient each (the
// real client library: its login, retries, bulk read and watch), each arriving at its time,
// reading its prefix, and (for a steady state) watching it as `dssss exec --watch` does.

import { setMaxListeners } from 'node:events';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { DssssClient } from '../cli/client';
import { DssssClientError } from '../cli/errors';
import { SimClock, type SimClockStart } from './sim-clock';
import { startThread } from './threads';

export interface BootPlan {
  /** The client's environment: its IMDS endpoint, or its task credentials; the STS endpoint. */
  readonly env: Record<string, string>;
  readonly prefix: string;
  /** How many secrets it must read. */
  readonly expected: number;
  /** When it arrives, simulated ms after the thread starts its boots. */
  readonly atMs: number;
}

export interface ClientsSettings {
  /** The API (the API Gateway stand-in). */
  readonly url: string;
  readonly clock: SimClockStart;
  readonly boots: readonly BootPlan[];
  /** Each boot then re-reads its prefix at this interval (simulated ms), until told to stop. */
  readonly watchIntervalMs?: number | undefined;
}

export interface BootOutcome {
  readonly arrived: number;
  readonly done: number;
  /** The client's error code, or "incomplete"; undefined: it read everything. */
  readonly failure?: string | undefined;
}

type Request = { readonly type: 'stop' };
type Reply =
  | { readonly type: 'started' }
  | { readonly type: 'booted'; readonly outcomes: readonly BootOutcome[]; readonly notice: true }
  | { readonly type: 'progress'; readonly done: number; readonly notice: true }
  | { readonly type: 'stopped'; readonly failedRereads: number };

export interface ClientsThread {
  /** Every boot's outcome, once the last is done. */
  readonly booted: Promise<readonly BootOutcome[]>;
  onProgress(listener: (done: number) => void): void;
  /** Ends the watches; the failed re-reads. */
  stop(): Promise<number>;
}

export async function startClients(settings: ClientsSettings): Promise<ClientsThread> {
  const thread = startThread<Request, Reply>(new URL(import.meta.url), { settings });
  let booted!: (outcomes: readonly BootOutcome[]) => void;
  const bootedPromise = new Promise<readonly BootOutcome[]>((resolve) => (booted = resolve));
  const progress: ((done: number) => void)[] = [];
  thread.onNotice((notice) => {
    if (notice.type === 'booted') booted(notice.outcomes);
    else if (notice.type === 'progress') for (const listener of progress) listener(notice.done);
  });
  await thread.ready;
  return {
    booted: bootedPromise,
    onProgress: (listener) => void progress.push(listener),
    stop: async () => {
      const reply = (await thread.ask({ type: 'stop' })) as Extract<Reply, { type: 'stopped' }>;
      await thread.terminate();
      return reply.failedRereads;
    },
  };
}

async function run(settings: ClientsSettings): Promise<void> {
  const clock = SimClock.resume(settings.clock);
  const watch = new AbortController();
  // Every watcher listens on this one signal.
  setMaxListeners(0, watch.signal);
  const watching: Promise<void>[] = [];
  let failedRereads = 0;
  let done = 0;
  parentPort!.on('message', (request: Request) => {
    if (request.type !== 'stop') return;
    watch.abort();
    void Promise.all(watching).then(() => parentPort!.postMessage({ type: 'stopped', failedRereads } satisfies Reply));
  });
  parentPort!.postMessage({ type: 'started' } satisfies Reply);
  const progress = setInterval(() => parentPort!.postMessage({ type: 'progress', done, notice: true } satisfies Reply), 5_000);

  const boot = async (plan: BootPlan): Promise<BootOutcome> => {
    const client = new DssssClient({
      url: settings.url,
      env: plan.env,
      retryForMs: 60_000,
      cacheTtlMs: 0,
      timing: { now: () => clock.now(), sleep: (ms) => clock.sleep(ms) },
    });
    await clock.sleep(plan.atMs);
    const arrived = clock.now();
    let failure: string | undefined;
    try {
      const secrets = await client.getAll(plan.prefix);
      if (secrets.size !== plan.expected) failure = 'incomplete';
      else if (settings.watchIntervalMs !== undefined) {
        watching.push(
          client.watch(plan.prefix, {
            intervalMs: settings.watchIntervalMs / clock.k,
            initial: secrets,
            onChange: () => undefined,
            onError: () => void failedRereads++,
            signal: watch.signal,
          }),
        );
      }
    } catch (err) {
      failure = err instanceof DssssClientError ? err.code : `unexpected (${(err as Error)?.name})`;
    }
    done++;
    return { arrived, done: clock.now(), ...(failure === undefined ? {} : { failure }) };
  };
  const outcomes = await Promise.all(settings.boots.map(boot));
  clearInterval(progress);
  parentPort!.postMessage({ type: 'booted', outcomes, notice: true } satisfies Reply);
}

if (!isMainThread && (workerData as { module?: string }).module === import.meta.url) void run((workerData as { settings: ClientsSettings }).settings);
