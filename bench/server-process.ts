// A server process of the benchmark's own: the local server entry of the bundle (as `npm
// start` runs it) on an ephemeral 127.0.0.1 port, requests to it over one keep-alive
// connection, and what /proc says about its CPU time and memory.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { PROJECT_ROOT } from './bundle';

/**
 * The options `npm start` gives node (package.json's start script, between `node` and the
 * script), so a server the benchmark starts runs as `npm start` runs it.
 */
export function npmStartNodeOptions(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const words = scripts.start.split(/\s+/);
  if (words[0] !== 'node' || words.at(-1) !== 'scripts/start.mjs') throw new Error(`package.json's start script is not "node [options] scripts/start.mjs": ${scripts.start}`);
  return words.slice(1, -1);
}

const REQUEST_TIMEOUT_MS = 10_000;

/** One HTTP request over `agent`'s keep-alive connection; the whole answer read. */
export function send(agent: Agent, origin: URL, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { agent, host: origin.hostname, port: origin.port, method, path, headers: body === undefined ? headers : { ...headers, 'Content-Length': String(body.length) }, timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The bundled server (`npm start`'s module) on an ephemeral 127.0.0.1 port; its stdout (audit and metrics lines) drained. */
/** A server process's whole environment. */
export type ServerEnv = Record<string, string>;

/** `nodeOptions` come after npm start's own (npmStartNodeOptions), unless `asNpmStart` is false: node's defaults. */
export async function startServer(file: string, env: Record<string, string>, nodeOptions: readonly string[] = [], asNpmStart = true): Promise<{ process: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...(asNpmStart ? npmStartNodeOptions() : []), ...nodeOptions, file, '--port', '0', '--host', '127.0.0.1'], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`the server did not start in 30 s: ${output.slice(-2000)}`));
    }, 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1];
      if (url) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        child.stderr?.resume();
        resolve({ process: child, url });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening: ${output.slice(-2000)}`));
    });
  });
}

/** CPU time and run-queue wait of every thread of a Linux process so far, in ns (/proc/PID/task/TID/schedstat). */
export async function schedstat(pid: number): Promise<{ cpuNs: number; waitNs: number }> {
  let cpuNs = 0;
  let waitNs = 0;
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      const [cpu = '0', wait = '0'] = (await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8')).trim().split(/\s+/);
      cpuNs += Number(cpu);
      waitNs += Number(wait);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return { cpuNs, waitNs };
}

/** VmRSS and VmHWM of a Linux process, in MiB. */
export async function memoryOf(pid: number): Promise<{ rssMiB: number; peakRssMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024 };
}

/** SIGTERM, and wait for it to exit (the server closes, and writes its profiles when profiled). */
export async function stopServer(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
