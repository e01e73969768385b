// The local server's start: from spawning `npm start` to its first answer to GET /v1/ready
// (the seal keys loaded and the store read: what any request needs first), on a data dir an
// earlier start prepared, once built. Beside it, in interleaved runs, what `npm start` runs
// without npm (`node scripts/start.mjs`), and the server from its sources under tsx, as
// `npm start` ran it before it ran the bundle.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from './bundle';
import { median } from './measure';
import { npmStartNodeOptions } from './server-process';

export const START_RUNS = 10;
const START_TIMEOUT_MS = 30_000;

export interface StartSpread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export interface ServerStartResult {
  readonly runs: number;
  /** What `npm start` runs: `node [options] scripts/start.mjs`. */
  readonly nodeCommand: string;
  /** `npm start -- --port 0`, to the first answer of GET /v1/ready. */
  readonly npmStartMs: StartSpread;
  /** `node [npm start's options] scripts/start.mjs`: what npm runs, without npm's own start. */
  readonly nodeStartMs: StartSpread;
  /** `node --import tsx lambda/server.ts`: the server from its sources, as `npm start` ran it before. */
  readonly tsxStartMs: StartSpread;
  readonly machine: string;
}

type Variant = 'npm' | 'node' | 'tsx';
const COMMANDS: Record<Variant, [string, string[]]> = {
  npm: ['npm', ['start', '--silent', '--', '--port', '0']],
  node: [process.execPath, [...npmStartNodeOptions(), 'scripts/start.mjs', '--port', '0']],
  tsx: [process.execPath, ['--import', 'tsx', 'lambda/server.ts', '--port', '0']],
};

export async function runServerStart(machine: string, log: (line: string) => void): Promise<ServerStartResult> {
  const work = await mkdtemp(join(tmpdir(), 'dssss-bench-start-'));
  try {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: join(work, 'home'),
      DSSSS_DATA_DIR: join(work, 'data'),
      // npm itself: no update check (it would ask the registry), no funding or audit notes.
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    };
    // The first start builds (when the build is missing or stale) and creates the data dir: not measured.
    await startToFirstAnswer('node', env);
    await startToFirstAnswer('npm', env);
    const runs: Record<Variant, number[]> = { npm: [], node: [], tsx: [] };
    for (let i = 0; i < START_RUNS; i++) {
      for (const variant of ['npm', 'node', 'tsx'] as const) runs[variant].push(await startToFirstAnswer(variant, env));
    }
    const spread = (values: number[]): StartSpread => ({ median: median(values), min: Math.min(...values), max: Math.max(...values) });
    const nodeCommand = ['node', ...npmStartNodeOptions(), 'scripts/start.mjs'].join(' ');
    const result = { runs: START_RUNS, nodeCommand, npmStartMs: spread(runs.npm), nodeStartMs: spread(runs.node), tsxStartMs: spread(runs.tsx), machine };
    log(
      `  npm start to its first answer: median ${result.npmStartMs.median.toFixed(0)} ms (${nodeCommand} ${result.nodeStartMs.median.toFixed(0)} ms; ` +
        `from the sources under tsx ${result.tsxStartMs.median.toFixed(0)} ms)`,
    );
    return result;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Spawn to the first 200 from GET /v1/ready, in ms; the process group is stopped after. */
async function startToFirstAnswer(variant: Variant, env: Record<string, string>): Promise<number> {
  const [command, args] = COMMANDS[variant];
  const started = performance.now();
  // Its own process group: npm's child (the server) is stopped with it.
  const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${variant} start: no server in ${START_TIMEOUT_MS} ms: ${output.slice(-1000)}`)), START_TIMEOUT_MS);
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
        if (found) {
          clearTimeout(timer);
          resolve(found);
        }
      });
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${variant} start: exited ${code} before listening: ${output.slice(-1000)}`));
      });
    });
    const answer = await fetch(`${url}/v1/ready`, { signal: AbortSignal.timeout(START_TIMEOUT_MS) });
    await answer.text();
    const elapsed = performance.now() - started;
    if (answer.status !== 200) throw new Error(`${variant} start: /v1/ready answered ${answer.status}`);
    return elapsed;
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      await exited;
    }
  }
}
