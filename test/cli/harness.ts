// The client end to end, shared by the CLI and library suites: a local dssss over real HTTP
// on loopback, EC2 instances (IMDSv2) and STS played by the shared AWS stand-in
// (test/support/fake-aws.ts, on loopback, its STS checking signatures), and a way to run one
// `dssss` command in this process (cli/main.ts, with the environment and stdio it would have)
// or as the bundle users install (dist/dssss.mjs, built by the global setup) in a child
// process. Nothing leaves 127.0.0.1.

import { execFile, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { serve } from '@hono/node-server';
import { main } from '../../cli/main';
import { CLIENT_FILE } from '../../scripts/build';
import { ACCOUNT, localFixture } from '../helpers';
import { FakeAws, type StandInInstance } from '../support/fake-aws';

/** An account the server also lets log in by IAM (DSSSS_ALLOWED_ACCOUNTS): its roles show as `123456789012:role`. */
export const OTHER_ACCOUNT = '123456789012';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  env?: Record<string, string>;
  input?: string;
  tokenFile?: string;
  bundle?: boolean;
  cwd?: string;
  /** The instance whose IMDS the command reads (default: the last one launched). A token is kept per IMDS endpoint, as per identity. */
  instance?: StandInInstance;
}

export async function startHarness() {
  // The stand-in signs identity documents with the server's development CA (the server is made
  // once the stand-in's URL is known), so the server's local registry names each instance's role.
  const fake = new FakeAws({ mock: false, account: ACCOUNT, ca: () => f.ca });
  const aws = await fake.serve();
  const f = await localFixture({ AWS_ENDPOINT_URL_STS: aws.url, DSSSS_ALLOWED_ACCOUNTS: `${ACCOUNT},${OTHER_ACCOUNT}` });
  const home = await mkdtemp(join(tmpdir(), 'dssss-cli-'));
  const api = serve({ fetch: f.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => api.once('listening', resolve));
  const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

  let current: StandInInstance;
  /**
   * A new EC2 instance of `role`, in the stand-in and in the server's registry, on which later
   * commands run (their IMDS is its). Without `instanceRole` no role is attached (its IMDS
   * answers 404 for one), so the client logs in with its identity document; with it, with the
   * role's credentials, which STS knows as `assumed-role/<role>/<instance id>`. `current:
   * false`: commands stay on the instance they ran on (give this one as a command's `instance`).
   */
  async function launch(role: string, options: { instanceRole?: boolean; current?: boolean } = {}): Promise<StandInInstance> {
    const instance = fake.addInstance(fake.newInstanceId(), ACCOUNT, role);
    if (!options.instanceRole) fake.detachRole(instance.instanceId);
    await f.registry.register(instance.instanceId, ACCOUNT, role);
    if (options.current !== false) current = instance;
    return instance;
  }
  await launch('web');

  /** The environment a command gets: no AWS credentials unless a test gives some, IMDS (its instance, else the last launched) and STS on the stand-in, no retries. */
  function environment(options: { env?: Record<string, string>; tokenFile?: string; instance?: StandInInstance } = {}): Record<string, string> {
    return {
      PATH: process.env.PATH!,
      HOME: home,
      DSSSS_URL: url,
      DSSSS_TOKEN_FILE: options.tokenFile ?? join(home, 'token.json'),
      AWS_EC2_METADATA_SERVICE_ENDPOINT: aws.imdsUrl((options.instance ?? current).instanceId),
      // Signed for the STS stand-in: a request signed for real STS would be forwarded there.
      AWS_ENDPOINT_URL_STS: aws.url,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // No waiting out failures unless a test asks for it (the retry tests).
      DSSSS_RETRY_FOR: '0',
      ...options.env,
    };
  }

  /**
   * One `dssss` command. In this process unless it must be a process of its own: `exec` (its
   * child inherits the stdio), `dev`, and the commands a test runs as the installed bundle
   * (`bundle: true`).
   */
  async function dssss(args: string[], options: CommandOptions = {}): Promise<Run> {
    const env = environment(options);
    if (options.bundle || args[0] === 'exec' || args[0] === 'dev') return bundled(args, env, options.input, options.cwd ?? home);
    let stdout = '';
    let stderr = '';
    const sink = (append: (text: string) => void) =>
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          append(chunk.toString());
          done();
        },
      });
    const stdin = Readable.from([Buffer.from(options.input ?? '')]);
    const code = await main(args, { env, stdin, stdout: sink((t) => (stdout += t)), stderr: sink((t) => (stderr += t)), cwd: options.cwd ?? home });
    return { code, stdout, stderr };
  }

  /** A long-running command (exec --watch, get --watch) as users run it: the bundle, in its own process. */
  function running(args: string[], env: Record<string, string> = {}) {
    const child = spawn(process.execPath, [CLIENT_FILE, ...args], { env: environment({ env }), cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (chunk: Buffer) => (out.stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out.stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
    return { child, out, exited };
  }

  /**
   * A stand-in for API Gateway in front of the server: each request is answered by `failure`
   * (given how many came before it) when it returns an answer, and passed on to the server
   * otherwise.
   */
  async function front(failure: (hits: number) => { status: number; headers?: Record<string, string>; body: string } | undefined) {
    let hits = 0;
    const { server, url: frontUrl } = await listen((req, res, body) => {
      const answer = failure(hits++);
      if (answer) return void res.writeHead(answer.status, { 'Content-Type': 'application/json', ...answer.headers }).end(answer.body);
      void fetch(`${url}${req.url}`, {
        method: req.method,
        headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'content-length')) as Record<string, string>,
        ...(body === '' ? {} : { body }),
      }).then(async (forwarded) => res.writeHead(forwarded.status, Object.fromEntries(forwarded.headers)).end(await forwarded.text()));
    });
    return { url: frontUrl, hits: () => hits, close: () => void server.close() };
  }

  async function close(): Promise<void> {
    api.close();
    await aws.close();
  }

  return {
    f,
    url,
    home,
    fake,
    aws,
    /** The instance commands run on: the last one launched. */
    get instance() {
      return current;
    },
    launch,
    environment,
    dssss,
    running,
    front,
    close,
  };
}

export type Harness = Awaited<ReturnType<typeof startHarness>>;

/** dist/dssss.mjs in a child process, as users run it. */
function bundled(args: string[], env: Record<string, string>, input: string | undefined, cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLIENT_FILE, ...args], { env, cwd, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input ?? '');
  });
}

/** A plain HTTP server on 127.0.0.1 that hands `handler` each request with its body read. */
export function listen(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handler(req, res, body));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

/** Polls `check` every 50 ms until it holds, at most `ms`: a bound, not a speed target. */
export async function until(check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const readText = (file: string) => readFile(file, 'utf8').catch(() => '');
