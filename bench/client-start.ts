// The client's start: from spawning `dssss get NAME` (the bundle users install,
// dist/dssss.mjs, on this machine's node) to its first request reaching the server, with a
// cached token, so that request is the GET itself. The server is a stand-in on loopback that
// notes when each request arrives (same clock as the spawn) and answers at once.

import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { tokenKey } from '../cli/client';
import { buildClient, CLIENT_FILE } from '../scripts/build';

export const CLIENT_START_RUNS = 20;
const WARMUP_RUNS = 3;
/** Issue 13: a command's start to its first request. */
export const CLIENT_START_TARGET_MS = 100;

export interface ClientStartResult {
  readonly runs: number;
  /** Spawn to the first request's arrival, ms. */
  readonly startToRequestMs: { readonly median: number; readonly p90: number; readonly max: number };
  /** The bundle's size, bytes. */
  readonly bundleBytes: number;
  readonly node: string;
}

export async function runClientStart(log: (line: string) => void): Promise<ClientStartResult> {
  const { files } = buildClient();
  const bundleBytes = files.find((f) => f.file === CLIENT_FILE)!.bytes;
  let arrived: number | undefined;
  const server = createServer((req, res) => {
    arrived ??= performance.now();
    req.resume();
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"name":"app/x","secret":"v","version":1,"roles":["web"]}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const home = await mkdtemp(join(tmpdir(), 'dssss-bench-client-'));
  const tokenFile = join(home, 'token.json');
  const now = Date.now();
  const token = { token: 'bench-token', role: 'web', method: 'iam', obtainedAt: new Date(now).toISOString(), expiresAt: new Date(now + 3600_000).toISOString() };
  const env = { PATH: process.env.PATH ?? '', HOME: home, DSSSS_URL: url, DSSSS_TOKEN_FILE: tokenFile, AWS_EC2_METADATA_DISABLED: 'true', DSSSS_RETRY_FOR: '0' };
  // Under the key the command looks up: this server, and the identity its environment selects.
  await writeFile(tokenFile, JSON.stringify({ version: 1, tokens: { [tokenKey(url, env, { method: 'auto' })]: token } }), { mode: 0o600 });

  const samples: number[] = [];
  try {
    for (let i = 0; i < WARMUP_RUNS + CLIENT_START_RUNS; i++) {
      arrived = undefined;
      const started = performance.now();
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [CLIENT_FILE, 'get', 'app/x'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('exit', resolve);
      });
      if (code !== 0 || arrived === undefined) throw new Error(`dssss get exited ${code} without a request`);
      if (i >= WARMUP_RUNS) samples.push(arrived - started);
    }
  } finally {
    server.close();
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)]!;
  const result = { runs: samples.length, startToRequestMs: { median: at(0.5), p90: at(0.9), max: samples.at(-1)! }, bundleBytes, node: process.version };
  log(`  dssss get, spawn to first request: median ${result.startToRequestMs.median.toFixed(1)} ms, p90 ${result.startToRequestMs.p90.toFixed(1)} ms (${result.runs} runs, node ${process.version})`);
  return result;
}

/** The targets this suite's figures are judged against. */
export function clientStartTargets(result: ClientStartResult) {
  return [
    { id: 'client.start.median', description: 'dssss get: spawn to its first request, median', unit: 'ms', target: CLIENT_START_TARGET_MS, measured: result.startToRequestMs.median },
    { id: 'client.bundle.bytes', description: 'dssss command bundle (dist/dssss.mjs)', unit: 'bytes', target: 1024 * 1024, measured: result.bundleBytes },
  ] as const;
}

/** The README's lines for this suite; `targets` formats the named checks' verdicts. */
export function renderClientStart(result: ClientStartResult, targets: (...labelled: [string, string][]) => string): string[] {
  const t = result.startToRequestMs;
  return [
    `**Client start**: \`node dist/dssss.mjs get NAME\` (${result.node}) with a cached token, from spawn to its first request at a loopback stand-in, ${result.runs} runs after ${WARMUP_RUNS} discarded:`,
    '',
    '| Median | p90 | max | Bundle | Target |',
    '| --- | --- | --- | --- | --- |',
    `| ${t.median.toFixed(1)} ms | ${t.p90.toFixed(1)} ms | ${t.max.toFixed(1)} ms | ${Math.round(result.bundleBytes / 1000)} kB | ${targets(['median', 'client.start.median'], ['bundle', 'client.bundle.bytes'])} |`,
    '',
  ];
}
