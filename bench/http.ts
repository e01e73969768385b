// The local server (`npm start`: the bundle's server entry, infra/bundle.ts) in a process of
// its own, under autocannon: token-authenticated GETs of one secret at 1, 10 and 50 connections.
// Latencies are taken from every response, at microsecond resolution (autocannon's own
// histogram keeps whole milliseconds).

import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { bundleLocalServer, LOCAL_SERVER_FILE } from '../infra/bundle';
import { localFixture } from './local-fixture';
import { percentile } from './measure';
import { startServer, stopServer } from './server-process';

export const CONNECTIONS = [1, 10, 50] as const;
export const HTTP_SECONDS = 10;
const WARMUP_SECONDS = 3;

export interface HttpFigure {
  readonly connections: number;
  readonly seconds: number;
  readonly requests: number;
  readonly requestsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly machine: string;
}

export async function runHttp(machine: string, log: (line: string) => void): Promise<HttpFigure[]> {
  const fixture = await localFixture('http');
  const build = await mkdtemp(join(tmpdir(), 'dssss-bench-http-'));
  let server: ChildProcess | undefined;
  try {
    const token = await fixture.login('web');
    await fixture.put(token, 'app/db-password', 'hunter2', ['web']);
    bundleLocalServer(build);
    // `npm start` without npm: the server on an ephemeral 127.0.0.1 port, data in the fixture's dir.
    const started = await startServer(join(build, LOCAL_SERVER_FILE), {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: fixture.dir,
      DSSSS_BACKEND: 'local',
      DSSSS_DATA_DIR: fixture.dir,
    });
    server = started.process;
    const url = `${started.url}/v1/secret/app/db-password`;
    const headers = { Reauthentication: token };

    const check = await fetch(url, { headers });
    if (check.status !== 200) throw new Error(`the local server answered ${check.status} to the benchmark GET`);

    await load(url, headers, 10, WARMUP_SECONDS); // JIT and connection set-up, thrown away
    const figures: HttpFigure[] = [];
    for (const connections of CONNECTIONS) {
      const { result, latencies } = await load(url, headers, connections, HTTP_SECONDS);
      if (result.non2xx > 0 || result.errors > 0) {
        throw new Error(`${connections} connections: ${result.non2xx} non-2xx answers and ${result.errors} errors (${JSON.stringify(result.statusCodeStats)})`);
      }
      const figure: HttpFigure = {
        connections,
        seconds: result.duration,
        requests: latencies.length,
        requestsPerSec: latencies.length / result.duration,
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
        // A loop, not Math.max(...latencies): a spread of more than ~120,000 values overflows the stack.
        maxMs: latencies.reduce((max, ms) => (ms > max ? ms : max), 0),
        machine,
      };
      figures.push(figure);
      log(`  ${connections} connections: ${Math.round(figure.requestsPerSec)} GET/s, p50 ${figure.p50Ms.toFixed(2)} ms, p99 ${figure.p99Ms.toFixed(2)} ms`);
    }
    return figures;
  } finally {
    await stopServer(server);
    await fixture.dispose();
    await rm(build, { recursive: true, force: true });
  }
}

async function load(url: string, headers: Record<string, string>, connections: number, seconds: number) {
  const latencies: number[] = [];
  const instance = autocannon({ url, connections, duration: seconds, headers, timeout: 10 });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode === 200) latencies.push(responseTime);
  });
  const result = await instance;
  return { result, latencies };
}
