// The server on the AWS backends, over the wire: the local server entry run from the bundle
// (infra/bundle.ts, as `npm start` runs it) with DSSSS_BACKEND=aws against moto_server on
// 127.0.0.1, configured as the stack configures the function (audit and metrics lines on
// stdout, the bookkeeping table). Per operation, one request at a time over one keep-alive
// connection: its latency, and the server's own share of it, i.e. that latency less the very
// AWS requests the operation made (moto's recorder writes them down once), sent straight to
// moto, one replay after each request, in interleaved rounds; medians of the rounds. Beside
// them, measured the same way, the floor: a bare Node server making the GET's one call with
// no SDK and no dssss (floor-server.mjs), i.e. what Node's HTTP and this machine cost. Then
// the server's resident memory after the load, and the parts (aws-parts.ts).

import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleLocalServer, LOCAL_SERVER_FILE } from '../infra/bundle';
import { median, percentile } from './measure';
import { describeRequest, motoAccount, type MotoAccount, type RecordedRequest } from './moto-fixture';
import { runAwsParts, type PartFigure } from './aws-parts';
import { memoryOf, npmStartNodeOptions, schedstat, send, startServer, stopServer, type ServerEnv } from './server-process';

export const AWS_ROUNDS = 7;
const FLOOR_SERVER = fileURLToPath(new URL('./floor-server.mjs', import.meta.url));
const PER_ROUND: Record<AwsOperationId, number> = { get: 30, put: 20, bulk: 20, list: 20, 'login-ec2': 20, 'login-iam': 20, floor: 30 };
/** Names under the bulk-read and listing prefix: two Parameter Store pages. */
const BULK_NAMES = 20;

/** `floor`: not dssss, the bare server of floor-server.mjs making the GET's one call. */
export type AwsOperationId = 'get' | 'put' | 'bulk' | 'list' | 'login-ec2' | 'login-iam' | 'floor';

export interface AwsOperationFigure {
  readonly id: AwsOperationId;
  readonly operation: string;
  /** The AWS requests one such operation makes, as moto received them. */
  readonly awsRequests: readonly string[];
  readonly rounds: number;
  /** Requests per round (and as many replays). */
  readonly perRound: number;
  /** Latency at 1 connection: the median of the rounds' medians. */
  readonly latencyMs: number;
  readonly p99Ms: number;
  /** The same AWS requests sent straight to moto: the median of the rounds' medians. */
  readonly directMs: number;
  /** latency - direct, per round; the figure is their median. */
  readonly serverShareMs: number;
  readonly shareByRoundMs: readonly number[];
  /** The server's CPU time per request (every thread, /proc schedstat): its own cost, whatever the machine's load. */
  readonly serverCpuUs: number;
  /** Time per request the server's threads were ready to run but waited for a CPU: what the machine's load added. */
  readonly serverRunQueueWaitUs: number;
  readonly machine: string;
}

export interface AwsServerResult {
  readonly figures: readonly AwsOperationFigure[];
  /**
   * The server's memory after the load, from /proc: resident now, and its peak; and the
   * same for a second server given the same requests under node's default heap settings
   * (without npm start's --max-semi-space-size).
   */
  readonly memory: {
    readonly rssMiB: number;
    readonly peakRssMiB: number;
    readonly requestsServed: number;
    readonly nodeDefaults: { readonly rssMiB: number; readonly peakRssMiB: number };
    readonly npmStartNodeOptions: readonly string[];
  };
  /** What the figures are made of, each beside what it replaced (aws-parts.ts). */
  readonly parts: readonly PartFigure[];
  readonly machine: string;
}

interface Prepared {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

/** A server under measurement: how to send it a request, and its pid for /proc. */
interface Target {
  call(p: Prepared): Promise<{ status: number; body: string }>;
  readonly pid: number;
}

interface Operation {
  readonly id: AwsOperationId;
  readonly operation: string;
  /** Default: the dssss server. */
  readonly target?: Target;
  /** Replay the AWS requests another operation made (the floor makes the GET's). */
  readonly replaysOf?: AwsOperationId;
  readonly status: number;
  /** The request, prepared outside the timed part (an IAM login is signed by its client beforehand). */
  prepare(): Promise<Prepared>;
  /** How a recorded request is replayed: a write goes to a shadow parameter, so the secret's own history is left alone. */
  replay?(request: RecordedRequest): RecordedRequest;
}

/** `profileDir`: the server runs under `--cpu-prof` and `--heap-prof`, writing its profiles there when it stops. */
export async function runAwsServer(machine: string, log: (line: string) => void, profileDir?: string): Promise<AwsServerResult> {
  const work = await mkdtemp(join(tmpdir(), 'dssss-bench-aws-'));
  let account: MotoAccount | undefined;
  let server: ChildProcess | undefined;
  let floor: ChildProcess | undefined;
  const serverAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  const floorAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  const motoAgent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    // Profiled, the build is kept beside the profiles (unminified): their frames point into it.
    const build = profileDir === undefined ? join(work, 'build') : join(profileDir, 'build');
    bundleLocalServer(build, { minify: profileDir === undefined });
    account = await motoAccount();
    const prefix = `/dssss-bench-${randomBytes(3).toString('hex')}/`;
    const [webDocument, adminDocument] = [await account.launch('web'), await account.launch('dssssadmin')];
    const worker = await account.assumeRole('worker', 'bench-task');

    const serverEnv: ServerEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: work,
      ...account.awsEnv,
      ...account.serverEnv(prefix),
      // Every EC2 login is an uncached one: DescribeInstances, GetInstanceProfile and the nonce binding each time.
      DSSSS_ROLE_CACHE_SECONDS: '0',
    };
    const started = await startServer(
      join(build, LOCAL_SERVER_FILE),
      serverEnv,
      profileDir === undefined ? [] : ['--cpu-prof', '--heap-prof', `--cpu-prof-dir=${profileDir}`, `--heap-prof-dir=${profileDir}`],
    );
    server = started.process;
    const origin = new URL(started.url);
    const call = (p: Prepared) => send(serverAgent, origin, p.method, p.path, p.headers, p.body === undefined ? undefined : Buffer.from(p.body));
    const dssss: Target = { call, pid: server.pid! };

    // Set-up through the API: tokens, and the secrets the operations read and write.
    const login = async (document: string) => {
      const answer = await call({ method: 'GET', path: '/v1/auth', headers: { Authentication: document, Accept: 'text/plain' } });
      if (answer.status !== 200) throw new Error(`aws suite set-up: login answered ${answer.status}: ${answer.body.slice(0, 200)}`);
      return answer.body;
    };
    const admin = await login(adminDocument);
    const web = await login(webDocument);
    const put = async (name: string, value: string) => {
      const answer = await call({ method: 'PUT', path: `/v1/secret/${name}`, headers: { Reauthentication: admin }, body: JSON.stringify({ Secret: value, Roles: ['web'] }) });
      if (answer.status !== 200) throw new Error(`aws suite set-up: PUT ${name} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
    };
    await put('bench/get', 'a-secret-value-of-some-32-chars!');
    await put('bench/put', 'a-secret-value-of-some-32-chars!');
    for (let i = 0; i < BULK_NAMES; i++) await put(`bench/bulk/s${String(i).padStart(2, '0')}`, `value-${i}`);

    const fresh = { Reauthentication: web, 'Cache-Control': 'no-cache' };
    const secretsPath = `${prefix}secrets/`;
    const operations: Operation[] = [
      { id: 'get', operation: 'GET a secret, with a token', status: 200, prepare: async () => ({ method: 'GET', path: '/v1/secret/bench/get', headers: fresh }) },
      {
        id: 'put',
        operation: 'PUT a secret (overwrite)',
        status: 200,
        prepare: async () => ({ method: 'PUT', path: '/v1/secret/bench/put', headers: { Reauthentication: web }, body: JSON.stringify({ Secret: randomBytes(16).toString('hex'), Roles: ['web'] }) }),
        replay: (r) => (describeRequest(r) === 'SSM.PutParameter' ? { ...r, body: Buffer.from(r.body.toString('utf8').replaceAll(secretsPath, `${prefix}shadow/`)) } : r),
      },
      {
        id: 'bulk',
        operation: `Bulk read of ${BULK_NAMES} secrets (\`values=true\`)`,
        status: 200,
        prepare: async () => ({ method: 'GET', path: '/v1/secrets?prefix=bench/bulk/&values=true', headers: fresh }),
      },
      { id: 'list', operation: `LIST ${BULK_NAMES} names`, status: 200, prepare: async () => ({ method: 'GET', path: '/v1/secrets?prefix=bench/bulk/', headers: fresh }) },
      {
        id: 'login-ec2',
        operation: 'EC2 login, uncached (role cache off)',
        status: 200,
        prepare: async () => ({ method: 'GET', path: '/v1/auth', headers: { Authentication: webDocument, Accept: 'text/plain' } }),
      },
      {
        id: 'login-iam',
        operation: 'IAM login (an assumed role: STS only)',
        status: 200,
        prepare: async () => ({ method: 'POST', path: '/v1/auth/iam', headers: { Accept: 'text/plain' }, body: JSON.stringify(await account!.iamLoginBody(worker)) }),
      },
    ];
    const dssssOperations = [...operations];

    // The floor: a bare Node server making the GET's one call, as plainly as Node can (no SDK, no dssss).
    const floorStarted = await startServer(FLOOR_SERVER, { ...serverEnv, DSSSS_FLOOR_PARAMETER: `${secretsPath}bench/get` });
    floor = floorStarted.process;
    const floorOrigin = new URL(floorStarted.url);
    operations.push({
      id: 'floor',
      operation: 'Floor: a bare node:http server making the same GetParameter, plainly signed (not dssss)',
      status: 200,
      target: { call: (p) => send(floorAgent, floorOrigin, p.method, p.path, p.headers), pid: floor.pid! },
      replaysOf: 'get',
      prepare: async () => ({ method: 'GET', path: '/', headers: {} }),
    });

    // What each operation sends to AWS, written down by moto once; replayed after every request.
    const replays = new Map<AwsOperationId, RecordedRequest[]>();
    for (const op of operations) {
      if (op.replaysOf !== undefined) {
        replays.set(op.id, replays.get(op.replaysOf)!);
        continue;
      }
      const prepared = await op.prepare();
      const recorded = await account.record(async () => {
        const answer = await call(prepared);
        if (answer.status !== op.status) throw new Error(`aws suite: ${op.id} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
      });
      if (recorded.length === 0) throw new Error(`aws suite: ${op.id} made no AWS request (a cache answered?)`);
      replays.set(op.id, recorded.map((r) => op.replay?.(r) ?? r));
      log(`  ${op.id}: ${recorded.map(describeRequest).join(', ')}`);
    }

    const motoOrigin = new URL(account.endpoint);
    const samples = new Map<AwsOperationId, { server: number[][]; direct: number[][]; cpuNs: number; waitNs: number }>(
      operations.map((op) => [op.id, { server: [], direct: [], cpuNs: 0, waitNs: 0 }]),
    );
    // Round 0 warms up (JIT, moto's lazily loaded services) and is thrown away.
    for (let round = 0; round <= AWS_ROUNDS; round++) {
      const order = operations.map((_, i) => operations[(i + round) % operations.length]!);
      for (const op of order) {
        const server: number[] = [];
        const direct: number[] = [];
        const target = op.target ?? dssss;
        const before = await schedstat(target.pid);
        for (let i = 0; i < PER_ROUND[op.id]; i++) {
          const prepared = await op.prepare();
          const t0 = performance.now();
          const answer = await target.call(prepared);
          const t1 = performance.now();
          if (answer.status !== op.status) throw new Error(`aws suite: ${op.id} answered ${answer.status}: ${answer.body.slice(0, 200)}`);
          server.push(t1 - t0);
          let spent = 0;
          for (const r of replays.get(op.id)!) {
            const t2 = performance.now();
            const replayed = await send(motoAgent, motoOrigin, r.method, new URL(r.url).pathname + new URL(r.url).search, replayHeaders(r), r.body);
            spent += performance.now() - t2;
            if (replayed.status >= 500) throw new Error(`aws suite: replaying ${describeRequest(r)} answered ${replayed.status}`);
          }
          direct.push(spent);
        }
        const after = await schedstat(target.pid);
        if (round > 0) {
          const kept = samples.get(op.id)!;
          kept.server.push(server);
          kept.direct.push(direct);
          kept.cpuNs += after.cpuNs - before.cpuNs;
          kept.waitNs += after.waitNs - before.waitNs;
        }
      }
    }

    const memory = await memoryOf(server.pid!);
    const requestsServed = 2 + BULK_NAMES + 2 + dssssOperations.length + (AWS_ROUNDS + 1) * dssssOperations.reduce((n, op) => n + PER_ROUND[op.id], 0);
    await stopServer(server);
    server = undefined;

    // The same requests to a second server of the same deployment (the tokens hold there)
    // under node's default heap settings: what npm start's options save.
    const second = await startServer(join(build, LOCAL_SERVER_FILE), serverEnv, [], false);
    server = second.process;
    const secondOrigin = new URL(second.url);
    const secondAgent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < requestsServed; i++) {
        const op = dssssOperations[i % dssssOperations.length]!;
        const p = await op.prepare();
        const answer = await send(secondAgent, secondOrigin, p.method, p.path, p.headers, p.body === undefined ? undefined : Buffer.from(p.body));
        if (answer.status !== op.status) throw new Error(`aws suite (node defaults): ${op.id} answered ${answer.status}`);
      }
    } finally {
      secondAgent.destroy();
    }
    const nodeDefaults = await memoryOf(server.pid!);
    log(`  the same requests, node's default heap settings: RSS ${nodeDefaults.rssMiB.toFixed(1)} MiB (peak ${nodeDefaults.peakRssMiB.toFixed(1)} MiB)`);
    const parts = await runAwsParts(log);
    const figures = operations.map((op): AwsOperationFigure => {
      const { server: s, direct: d, cpuNs, waitNs } = samples.get(op.id)!;
      const requests = s.reduce((n, round) => n + round.length, 0);
      const shares = s.map((round, i) => median(round) - median(d[i]!));
      return {
        id: op.id,
        operation: op.operation,
        awsRequests: replays.get(op.id)!.map(describeRequest),
        rounds: AWS_ROUNDS,
        perRound: PER_ROUND[op.id],
        latencyMs: median(s.map((round) => median(round))),
        p99Ms: percentile(s.flat(), 99),
        directMs: median(d.map((round) => median(round))),
        serverShareMs: median(shares),
        shareByRoundMs: shares,
        serverCpuUs: cpuNs / requests / 1000,
        serverRunQueueWaitUs: waitNs / requests / 1000,
        machine,
      };
    });
    for (const f of figures) {
      log(
        `  ${f.operation}: ${f.latencyMs.toFixed(2)} ms (p99 ${f.p99Ms.toFixed(2)}), the AWS requests alone ${f.directMs.toFixed(2)} ms, ` +
          `the server's share ${f.serverShareMs.toFixed(2)} ms (rounds: ${f.shareByRoundMs.map((x) => x.toFixed(2)).join(', ')}); ` +
          `server CPU ${f.serverCpuUs.toFixed(0)} µs a request, ${f.serverRunQueueWaitUs.toFixed(0)} µs waiting for a CPU`,
      );
    }
    log(`  server memory after ${requestsServed} requests: RSS ${memory.rssMiB.toFixed(1)} MiB (peak ${memory.peakRssMiB.toFixed(1)} MiB)`);
    return { figures, memory: { ...memory, requestsServed, nodeDefaults, npmStartNodeOptions: npmStartNodeOptions() }, parts, machine };
  } finally {
    serverAgent.destroy();
    floorAgent.destroy();
    motoAgent.destroy();
    await stopServer(server);
    await stopServer(floor);
    await account?.close();
    await rm(work, { recursive: true, force: true });
  }
}

/** The recorded headers, less those of the hop (the body's length is set again). */
function replayHeaders(request: RecordedRequest): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection') continue;
    headers[name] = value;
  }
  if (request.body.length > 0) headers['Content-Length'] = String(request.body.length);
  return headers;
}
