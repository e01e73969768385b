// The client end to end, shared by the CLI suites: a local dssss over real HTTP on
// loopback, IMDSv2 and STS played by stand-ins, and a way to run one `dssss` command in this
// process (cli/main.ts, with the environment and stdio it would have) or as the bundle users
// install (dist/dssss.mjs, built by the global setup) in a child process. Nothing leaves 127.0.0.1.

import { execFile, spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { serve } from '@hono/node-server';
import { main } from '../../cli/main';
import { CLIENT_FILE } from '../../scripts/build';
import { ACCOUNT, localFixture } from '../helpers';
import { startImds, startSts } from './stand-ins';

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
}

export async function startHarness() {
  const imds = await startImds();
  const home = await mkdtemp(join(tmpdir(), 'dssss-cli-'));
  const sts = await startSts(() => ({ account: ACCOUNT, role: imds.role, instanceId: imds.instanceId }));
  const f = await localFixture({ AWS_ENDPOINT_URL_STS: sts.url, DSSSS_ALLOWED_ACCOUNTS: `${ACCOUNT},123456789012` });
  const api = serve({ fetch: f.app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => api.once('listening', resolve));
  const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  // The instance behind IMDS's role credentials (STS names it as the session).
  await f.registry.register(imds.instanceId, ACCOUNT, 'web');

  /** The environment a command gets: no AWS credentials unless a test gives some, IMDS and STS on the stand-ins, no retries. */
  function environment(options: { env?: Record<string, string>; tokenFile?: string } = {}): Record<string, string> {
    return {
      PATH: process.env.PATH!,
      HOME: home,
      DSSSS_URL: url,
      DSSSS_TOKEN_FILE: options.tokenFile ?? join(home, 'token.json'),
      AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.url,
      // Signed for the STS stand-in: a request signed for real STS would be forwarded there.
      AWS_ENDPOINT_URL_STS: sts.url,
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

  function close(): void {
    api.close();
    imds.server.close();
    sts.server.close();
  }

  return { f, url, home, imds, sts, environment, dssss, running, close };
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

/** Polls `check` every 50 ms until it holds, at most `ms`: a bound, not a speed target. */
export async function until(check: () => Promise<boolean> | boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const readText = (file: string) => readFile(file, 'utf8').catch(() => '');
