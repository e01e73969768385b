// Global setup for `npm run test:aws`: moto_server (the moto AWS emulator) on a free
// loopback port, and the SDK pointed at it through AWS_ENDPOINT_URL. Nothing leaves 127.0.0.1.
// `startMotoServer` is shared with the benchmark (bench/aws-server.ts).

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface MotoServer {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  stop(): void;
}

/** moto_server on a free 127.0.0.1 port, once it answers; `env` adds to its environment (e.g. the recorder's file). */
export async function startMotoServer(env: Readonly<Record<string, string>> = {}): Promise<MotoServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore', env: { ...process.env, ...env } });
  const failed = new Promise<never>((_, reject) => {
    moto.on('error', (err) => reject(new Error(`moto_server did not start (pip install 'moto[server]'): ${err.message}`)));
    moto.on('exit', (code) => reject(new Error(`moto_server exited with ${code}`)));
  });
  failed.catch(() => undefined); // observed by the race below; later exits are the caller's business
  const stop = () => {
    if (moto.exitCode === null && moto.signalCode === null) moto.kill('SIGTERM');
  };
  const deadline = Date.now() + 30_000;
  try {
    for (;;) {
      const up = await Promise.race([fetch(`${endpoint}/moto-api/`).then((r) => r.ok, () => false), failed]);
      if (up) break;
      if (Date.now() > deadline) throw new Error('moto_server did not answer within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    stop();
    throw err;
  }
  return { endpoint, stop };
}

export default async function setup(project: TestProject): Promise<() => void> {
  const moto = await startMotoServer();
  project.provide('awsEndpoint', moto.endpoint);
  return () => moto.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}
