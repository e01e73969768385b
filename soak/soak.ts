// Soak: the local server, exactly as `npm start` runs it, under sustained concurrent load on
// loopback with a mixed workload (login, put, get, list, delete by an admin). Every answer is
// checked, not just its status: a read must return what was last written, a list exactly the
// names written. Prints requests served, errors (must be 0: otherwise exit 1), p50/p99 latency,
// and the server's memory at the start and the end.
//
//   npm run soak                                  30 s, 16 concurrent workers
//   npm run soak -- --seconds 600 --concurrency 32
//   SOAK_SECONDS=3600 SOAK_CONCURRENCY=8 npm run soak

import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { ensureDevCa } from '../lambda/adapters/dev-ca-files';
import { LocalRegistry } from '../lambda/adapters/local-registry';
import { signIdentityDocument, type DevCa } from '../lambda/identity/dev-ca';

const ROOT = join(import.meta.dirname, '..');
const ACCOUNT = '111122223333';
/** Names a worker keeps alive at once; it creates, overwrites and has them deleted. */
const NAMES_PER_WORKER = 20;
/** Tokens are renewed well before they expire, so a long soak never sees a 401. */
const TOKEN_RENEW_MS = 10 * 60_000;

type Operation = 'login' | 'put' | 'get' | 'list' | 'delete';
const WORKLOAD: readonly [Operation, number][] = [
  ['get', 45],
  ['put', 25],
  ['list', 12],
  ['delete', 10],
  ['login', 8],
];

interface Options {
  seconds: number;
  concurrency: number;
}

function options(): Options {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, concurrency: { type: 'string' } }, strict: true });
  const number = (flag: string, raw: string | undefined, fallback: number, max: number) => {
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${flag}: an integer from 1 to ${max}`);
    return n;
  };
  return {
    seconds: number('--seconds', values.seconds ?? process.env.SOAK_SECONDS, 30, 7 * 24 * 3600),
    concurrency: number('--concurrency', values.concurrency ?? process.env.SOAK_CONCURRENCY, 16, 1024),
  };
}

// ---- the server ----

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  readonly dataDir: string;
  memory(): Promise<NodeJS.MemoryUsage>;
  stop(): Promise<void>;
}

async function startServer(): Promise<Server> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dssss-soak-'));
  const child = fork(join(ROOT, 'lambda', 'server.ts'), ['--port', '0'], {
    cwd: ROOT,
    execArgv: ['--import', 'tsx', '--import', join(ROOT, 'soak', 'memory-probe.ts')],
    env: { ...process.env, DSSSS_DATA_DIR: dataDir, DSSSS_TOKEN_TTL_SECONDS: '3600', PORT: '' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start:\n${output}`)), 30_000);
    child.stdout!.on('data', () => {
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}):\n${output}`));
    });
  });
  return {
    child,
    url,
    dataDir,
    memory: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the server did not report its memory')), 5000);
        child.once('message', (message: { memory: NodeJS.MemoryUsage }) => {
          clearTimeout(timer);
          resolve(message.memory);
        });
        child.send('memory');
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

// ---- measurement ----

/** Latencies in log-spaced buckets (1% apart) from 10 microseconds: constant memory for any duration. */
class Latencies {
  private readonly buckets = new Uint32Array(2000);
  count = 0;
  max = 0;

  record(ms: number): void {
    const index = Math.min(this.buckets.length - 1, Math.max(0, Math.ceil(Math.log(ms / 0.01) / Math.log(1.01))));
    this.buckets[index]!++;
    this.count++;
    this.max = Math.max(this.max, ms);
  }

  percentile(p: number): number {
    let seen = 0;
    const target = Math.ceil((p / 100) * this.count);
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!;
      if (seen >= target && seen > 0) return 0.01 * 1.01 ** i;
    }
    return 0;
  }
}

interface Stats {
  latencies: Latencies;
  byOperation: Record<Operation, number>;
  errors: number;
  firstErrors: string[];
}

// ---- the workload ----

interface Identity {
  readonly document: string;
  token: string;
  renewedAt: number;
}

class Worker {
  /** What this worker last wrote under each of its names, and the version it got. */
  private readonly written = new Map<string, { value: string; version: number }>();
  private next = 0;

  constructor(
    private readonly index: number,
    private readonly url: string,
    private readonly self: Identity,
    private readonly admin: Identity,
    private readonly stats: Stats,
  ) {}

  async run(until: number): Promise<void> {
    while (performance.now() < until) {
      await this.step(pick());
    }
  }

  private get prefix(): string {
    return `soak/w${this.index}/`;
  }

  private async step(wanted: Operation): Promise<void> {
    const names = [...this.written.keys()];
    const operation: Operation =
      (wanted === 'get' || wanted === 'delete') && names.length === 0 ? 'put' : wanted === 'put' && names.length >= NAMES_PER_WORKER ? 'get' : wanted;
    const any = () => names[Math.floor(Math.random() * names.length)]!;

    switch (operation) {
      case 'login': {
        const response = await this.send('login', 'GET', '/v1/auth', { Authentication: this.self.document, Accept: 'text/plain' });
        if (this.expect(response, 200, 'login')) {
          this.self.token = await response!.text();
          this.self.renewedAt = performance.now();
        }
        return;
      }
      case 'put': {
        // Mostly new names, sometimes an overwrite: versions pile up (the store keeps 100).
        const name = names.length > 0 && Math.random() < 0.3 ? any() : `${this.prefix}n${this.next++}`;
        const value = `${randomBytes(1 + Math.floor(Math.random() * 256)).toString('base64')} ☃ ${this.index}`;
        const response = await this.send('put', 'PUT', `/v1/secret/${name}`, this.auth(this.self), JSON.stringify({ Secret: value, Roles: ['web', 'worker'] }));
        if (this.expect(response, 200, `put ${name}`)) {
          const { version } = (await response!.json()) as { version: number };
          const previous = this.written.get(name)?.version ?? 0;
          if (version !== previous + 1) this.error(`put ${name}: version ${version} after ${previous}`);
          this.written.set(name, { value, version });
        }
        return;
      }
      case 'get': {
        const name = any();
        const response = await this.send('get', 'GET', `/v1/secret/${name}`, this.auth(this.self));
        if (this.expect(response, 200, `get ${name}`)) {
          const body = (await response!.json()) as { secret: string; version: number };
          const expected = this.written.get(name)!;
          if (body.secret !== expected.value || body.version !== expected.version) this.error(`get ${name}: not what was last written`);
        }
        return;
      }
      case 'list': {
        const response = await this.send('list', 'GET', `/v1/secrets?prefix=${this.prefix}`, this.auth(this.self));
        if (this.expect(response, 200, 'list')) {
          const { names: listed } = (await response!.json()) as { names: string[] };
          if (JSON.stringify(listed) !== JSON.stringify([...this.written.keys()].sort())) this.error(`list ${this.prefix}: not the names written`);
        }
        return;
      }
      case 'delete': {
        const name = any();
        const response = await this.send('delete', 'DELETE', `/v1/secret/${name}`, this.auth(this.admin));
        if (this.expect(response, 204, `delete ${name}`)) this.written.delete(name);
        return;
      }
    }
  }

  private auth(identity: Identity): Record<string, string> {
    if (performance.now() - identity.renewedAt > TOKEN_RENEW_MS) {
      identity.renewedAt = performance.now();
      void fetch(`${this.url}/v1/auth`, { headers: { Authentication: identity.document, Accept: 'text/plain' } })
        .then(async (r) => (r.status === 200 ? (identity.token = await r.text()) : this.error(`token renewal: ${r.status}`)))
        .catch((err: unknown) => this.error(`token renewal: ${String(err)}`));
    }
    return { Reauthentication: identity.token };
  }

  private async send(operation: Operation, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Response | undefined> {
    const start = performance.now();
    try {
      const response = await fetch(`${this.url}${path}`, { method, headers, body });
      this.stats.latencies.record(performance.now() - start);
      this.stats.byOperation[operation]++;
      return response;
    } catch (err) {
      this.stats.byOperation[operation]++;
      this.error(`${method} ${path}: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }
  }

  private expect(response: Response | undefined, status: number, what: string): boolean {
    if (response === undefined) return false;
    if (response.status === status) return true;
    this.stats.errors++;
    void response.text().then((text) => this.note(`${what}: ${response.status} ${text.slice(0, 200)}`));
    return false;
  }

  private error(message: string): void {
    this.stats.errors++;
    this.note(message);
  }

  private note(message: string): void {
    if (this.stats.firstErrors.length < 10) this.stats.firstErrors.push(message);
  }
}

function pick(): Operation {
  const total = WORKLOAD.reduce((sum, [, weight]) => sum + weight, 0);
  let r = Math.random() * total;
  for (const [operation, weight] of WORKLOAD) {
    r -= weight;
    if (r < 0) return operation;
  }
  return 'get';
}

async function identityFor(server: Server, ca: DevCa, role: string, instanceId: string): Promise<Identity> {
  await new LocalRegistry(server.dataDir).register(instanceId, ACCOUNT, role);
  const pendingTime = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const document = signIdentityDocument({ instanceId, accountId: ACCOUNT, region: 'us-east-1', pendingTime }, ca);
  const response = await fetch(`${server.url}/v1/auth`, { headers: { Authentication: document, Accept: 'text/plain' } });
  if (response.status !== 200) throw new Error(`login as ${role}: ${response.status} ${await response.text()}`);
  return { document, token: await response.text(), renewedAt: performance.now() };
}

// ---- main ----

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const ms = (value: number) => `${value.toFixed(2)} ms`;

async function main(): Promise<void> {
  const { seconds, concurrency } = options();
  const server = await startServer();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.stop();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));

  try {
    console.log(`dssss soak: ${seconds} s, ${concurrency} concurrent workers, local server ${server.url} (pid ${server.child.pid})`);
    const ca = await ensureDevCa(server.dataDir);
    const admin = await identityFor(server, ca, 'dssssadmin', `i-${'a'.repeat(16)}`);
    const identities = await Promise.all(
      Array.from({ length: concurrency }, (_, i) => identityFor(server, ca, i % 2 === 0 ? 'web' : 'worker', `i-${i.toString(16).padStart(16, '0')}`)),
    );
    const memoryAtStart = await server.memory();
    const stats: Stats = { latencies: new Latencies(), byOperation: { login: 0, put: 0, get: 0, list: 0, delete: 0 }, errors: 0, firstErrors: [] };

    const started = performance.now();
    const until = started + seconds * 1000;
    const progress = setInterval(() => {
      const elapsed = (performance.now() - started) / 1000;
      console.log(`  ${elapsed.toFixed(0)} s: ${stats.latencies.count} requests, ${stats.errors} errors, p99 ${ms(stats.latencies.percentile(99))}`);
    }, 10_000);
    await Promise.all(identities.map((identity, i) => new Worker(i, server.url, identity, admin, stats).run(until)));
    clearInterval(progress);
    const elapsed = (performance.now() - started) / 1000;
    const memoryAtEnd = await server.memory();
    const alive = server.child.exitCode === null;
    if (!alive) stats.errors++;

    const { latencies } = stats;
    console.log(`requests served: ${latencies.count} in ${elapsed.toFixed(1)} s (${(latencies.count / elapsed).toFixed(0)}/s)`);
    console.log(`  ${Object.entries(stats.byOperation).map(([op, n]) => `${op} ${n}`).join(', ')}`);
    console.log(`errors: ${stats.errors}${alive ? '' : ' (the server died)'}`);
    for (const message of stats.firstErrors) console.log(`  ${message}`);
    console.log(`latency: p50 ${ms(latencies.percentile(50))}, p99 ${ms(latencies.percentile(99))}, max ${ms(latencies.max)}`);
    console.log(`server memory at start: rss ${mb(memoryAtStart.rss)}, heap used ${mb(memoryAtStart.heapUsed)} of ${mb(memoryAtStart.heapTotal)}`);
    console.log(`server memory at end:   rss ${mb(memoryAtEnd.rss)}, heap used ${mb(memoryAtEnd.heapUsed)} of ${mb(memoryAtEnd.heapTotal)}`);
    process.exitCode = stats.errors === 0 ? 0 : 1;
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(`soak: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
