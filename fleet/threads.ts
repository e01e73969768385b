// The fleet simulation's worker threads: each runs one module (fleet/worker.mjs registers
// tsx first) and talks to the main thread in request/reply messages, one at a time.

import { Worker } from 'node:worker_threads';

export interface Thread<Request, Reply> {
  /** The first message the thread sends, once it is ready. */
  readonly ready: Promise<Reply>;
  /** Sends `request` and waits for the thread's next reply. */
  ask(request: Request): Promise<Reply>;
  /** Every message the thread sends on its own (not a reply), e.g. progress. */
  onNotice(listener: (notice: Reply) => void): void;
  terminate(): Promise<void>;
}

/** Messages a thread sends on its own carry `notice: true`; the rest answer requests in order. */
export function startThread<Request, Reply>(module: URL, data: object): Thread<Request, Reply> {
  const worker = new Worker(new URL('./worker.mjs', import.meta.url), { workerData: { ...data, module: module.href } });
  const waiting: { resolve: (reply: Reply) => void; reject: (err: Error) => void }[] = [];
  const listeners: ((notice: Reply) => void)[] = [];
  worker.on('message', (message: Reply & { notice?: boolean }) => {
    if (message.notice) for (const listener of listeners) listener(message);
    else waiting.shift()?.resolve(message);
  });
  worker.on('error', (err) => {
    for (const w of waiting.splice(0)) w.reject(err);
  });
  const next = () => new Promise<Reply>((resolve, reject) => waiting.push({ resolve, reject }));
  const ready = next();
  return {
    ready,
    ask: (request) => {
      const reply = next();
      worker.postMessage(request);
      return reply;
    },
    onNotice: (listener) => void listeners.push(listener),
    terminate: async () => void (await worker.terminate()),
  };
}
