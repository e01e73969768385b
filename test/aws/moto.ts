// Global setup for `npm run test:aws`: moto_server (the moto AWS emulator) on a free
// loopback port, and the SDK pointed at it through AWS_ENDPOINT_URL. Nothing leaves 127.0.0.1.

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { TestProject } from 'vitest/node';

let moto: ChildProcess | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export default async function setup(project: TestProject): Promise<() => void> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  const failed = new Promise<never>((_, reject) => {
    moto!.on('error', (err) => reject(new Error(`moto_server did not start (pip install 'moto[server]'): ${err.message}`)));
    moto!.on('exit', (code) => reject(new Error(`moto_server exited with ${code}`)));
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const up = await Promise.race([
      fetch(`${endpoint}/moto-api/`).then((r) => r.ok, () => false),
      failed,
    ]);
    if (up) break;
    if (Date.now() > deadline) throw new Error('moto_server did not answer within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  project.provide('awsEndpoint', endpoint);
  return () => {
    moto?.kill('SIGTERM');
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
  }
}
