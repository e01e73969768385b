// The real local server (lambda/server.ts) in a child process on a loopback port, with its own
// temp data dir, and identity documents minted for it; plus a raw-socket HTTP client that
// sends exactly the bytes it is given.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDevCa } from '../../lambda/adapters/dev-ca-files';
import { LocalRegistry } from '../../lambda/adapters/local-registry';
import { signIdentityDocument } from '../../lambda/identity/dev-ca';

const root = join(import.meta.dirname, '..', '..');

export interface LocalServer {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  /** Everything the server wrote to stdout and stderr. */
  output(): string;
  /** A signed identity document for a fresh instance registered with `role`. */
  identity(role: string): Promise<string>;
  login(role: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startLocalServer(env: Record<string, string> = {}): Promise<LocalServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dssss-server-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'lambda/server.ts', '--port', '0'], {
    cwd: root,
    // As the in-process fixture: home account 111122223333, any role creates any name, unless `env` says otherwise.
    env: { ...process.env, DSSSS_ACCOUNT_ID: '111122223333', DSSSS_WRITER_ROLES: '*', ...env, DSSSS_DATA_DIR: dataDir, PORT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 25_000);
    const onData = () => {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited ${code}: ${output}`));
    });
  });

  const ca = await ensureDevCa(dataDir);
  const registry = new LocalRegistry(dataDir);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const server: LocalServer = {
    url,
    port: Number(new URL(url).port),
    process: child,
    output: () => output,
    async identity(role) {
      const instanceId = `i-${randomBytes(8).toString('hex')}`;
      await registry.register(instanceId, '111122223333', role);
      const pendingTime = new Date(Date.now() - 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
      return signIdentityDocument({ instanceId, accountId: '111122223333', region: 'us-east-1', pendingTime }, ca);
    },
    async login(role) {
      const response = await fetch(`${url}/v1/auth`, { headers: { Authentication: await server.identity(role), Accept: 'text/plain' } });
      if (response.status !== 200) throw new Error(`login failed: ${response.status}`);
      return response.text();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

export interface RawResponse {
  /** The final (non-1xx) status, or undefined when the server closed without answering. */
  readonly status: number | undefined;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The server closed the connection after answering (or instead of answering). */
  readonly closed: boolean;
}

/**
 * Sends `bytes` on a fresh connection and reads one response: complete by Content-Length,
 * by the chunked terminator, or by the server closing. Undefined status: nothing came back.
 */
export function rawRequest(port: number, bytes: string | Uint8Array, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseResponse(data), closed });
    };
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      socket.destroy();
      reject(new Error(`no complete response in ${timeoutMs} ms; got ${JSON.stringify(data.toString('latin1').slice(0, 200))}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (isComplete(data)) finish(false);
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  });
}

function splitHead(data: Buffer): { status: number; headers: Record<string, string>; rest: Buffer } | undefined {
  let offset = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', offset);
    if (end < 0) return undefined;
    const lines = data.subarray(offset, end).toString('latin1').split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
    if (status >= 100 && status < 200) {
      offset = end + 4; // an interim response (100 Continue): the real one follows
      continue;
    }
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    return { status, headers, rest: data.subarray(end + 4) };
  }
}

function dechunk(body: Buffer): { text: string; complete: boolean } {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const line = body.indexOf('\r\n', offset);
    if (line < 0) return { text: Buffer.concat(parts).toString('utf8'), complete: false };
    const size = parseInt(body.subarray(offset, line).toString('latin1'), 16);
    if (!Number.isFinite(size)) return { text: Buffer.concat(parts).toString('utf8'), complete: false };
    if (size === 0) return { text: Buffer.concat(parts).toString('utf8'), complete: true };
    parts.push(body.subarray(line + 2, line + 2 + size));
    offset = line + 2 + size + 2;
  }
}

function isComplete(data: Buffer): boolean {
  const head = splitHead(data);
  if (!head) return false;
  if (head.headers['transfer-encoding']?.toLowerCase() === 'chunked') return dechunk(head.rest).complete;
  const length = head.headers['content-length'];
  if (length !== undefined) return head.rest.length >= Number(length);
  return head.status === 204 || head.status === 304;
}

function parseResponse(data: Buffer): Omit<RawResponse, 'closed'> {
  const head = splitHead(data);
  if (!head) return { status: undefined, headers: {}, body: data.toString('latin1') };
  const body = head.headers['transfer-encoding']?.toLowerCase() === 'chunked' ? dechunk(head.rest).text : head.rest.toString('utf8');
  return { status: head.status, headers: head.headers, body };
}
