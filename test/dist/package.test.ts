// The client as users install it, end to end against `npm start`'s server (lambda/server.ts
// in its own process on a loopback port, with its own data dir): `npm pack`, the tarball
// installed into an empty directory with `npm install --omit=dev`, then `dssss dev login`,
// put, get, ls, exec with the installed bin and with the linux-x64 standalone executable;
// and the library imported from the installed package, in JavaScript and type-checked in
// TypeScript. Nothing leaves 127.0.0.1 (IMDS is off in every environment here).

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSea, seaExecutable } from '../../scripts/build-sea';

const root = join(import.meta.dirname, '..', '..');
const version = (JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }).version;

let work: string;
let app: string;
let tarball: string;
let server: ChildProcess;
let dataDir: string;
let url: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { cwd?: string; env?: Record<string, string>; input?: string } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { cwd: options.cwd ?? work, env: options.env ?? { PATH: process.env.PATH! }, timeout: 120_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(options.input ?? '');
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dssss-dist-'));
  // npm pack runs prepack: the full build, declarations included.
  const packed = await run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: root, env: { ...process.env } as Record<string, string> });
  expect(packed.code, packed.stderr).toBe(0);
  tarball = join(work, packed.stdout.trim().split('\n').at(-1)!);
  app = join(work, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  const installed = await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', tarball], { cwd: app, env: { ...process.env } as Record<string, string> });
  expect(installed.code, installed.stderr).toBe(0);
  buildSea(['x64']);

  dataDir = await mkdtemp(join(tmpdir(), 'dssss-dist-data-'));
  server = spawn(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), 'lambda/server.ts', '--port', '0'], {
    cwd: root,
    env: { PATH: process.env.PATH!, DSSSS_DATA_DIR: dataDir, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let banner = '';
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${banner}`)), 30_000);
    server.stdout!.on('data', (chunk: Buffer) => {
      banner += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(banner);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    server.stderr!.on('data', (chunk: Buffer) => (banner += chunk.toString()));
    server.on('exit', (code) => reject(new Error(`server exited ${code}: ${banner}`)));
  });
});

afterAll(() => {
  server?.kill('SIGTERM');
});

/** What a user's shell would hold: no AWS credentials, IMDS off, the server, its data dir for dev login. */
function userEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH!,
    HOME: home,
    DSSSS_URL: url,
    DSSSS_DATA_DIR: dataDir,
    AWS_EC2_METADATA_DISABLED: 'true',
    DSSSS_RETRY_FOR: '0',
  };
}

describe('the packed package', () => {
  it('is one tarball under 1 MB whose install pulls no dependencies', async () => {
    expect((await stat(tarball)).size).toBeLessThanOrEqual(1024 * 1024);
    expect((await readdir(join(app, 'node_modules'))).filter((n) => !n.startsWith('.'))).toEqual(['dssss']);
    const files = await readdir(join(app, 'node_modules', 'dssss', 'dist'));
    expect(files.sort()).toEqual(['dssss.mjs', 'index.d.ts', 'index.js']);
    const manifest = JSON.parse(await readFile(join(app, 'node_modules', 'dssss', 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest.dependencies).toBeUndefined();
  });
});

const forms = [
  ['the installed bin (npm install --omit=dev of the tarball)', () => join(app, 'node_modules', '.bin', 'dssss')],
  ['the linux-x64 standalone executable', () => seaExecutable('x64')],
] as const;

describe.each(forms)('%s', (_label, bin) => {
  it('logs in as a fake instance, puts, gets, lists and execs against npm start', async () => {
    const home = await mkdtemp(join(tmpdir(), 'dssss-dist-home-'));
    const env = userEnv(home);
    const dssss = (args: string[], input?: string) => run(bin(), args, { env, cwd: home, ...(input === undefined ? {} : { input }) });

    expect((await dssss(['--version'])).stdout).toBe(`dssss ${version}\n`);
    const login = await dssss(['dev', 'login', '--role', 'web']);
    expect(login.stderr).toMatch(/^logged in as role web \(a fake instance/);
    expect(login.code).toBe(0);
    expect((await stat(join(home, '.dssss', 'token.json'))).mode & 0o777).toBe(0o600);
    const name = `web/${bin().endsWith('x64') ? 'sea' : 'npm'}/db-password`;
    expect(await dssss(['put', name, '--roles', 'web'], 'hunter2')).toMatchObject({ code: 0, stdout: '' });
    expect(await dssss(['get', name])).toMatchObject({ code: 0, stdout: 'hunter2' });
    expect((await dssss(['ls', 'web'])).stdout).toContain(`${name}\n`);
    expect((await dssss(['ls', '-l', 'web'])).stdout).toMatch(new RegExp(`${name}\\t1\\t\\S+\\tweb/i-[0-9a-f]+\\tweb\\n`));
    const prefix = name.slice(0, name.lastIndexOf('/'));
    const exec = await dssss(['exec', '--prefix', prefix, '--', 'sh', '-c', 'echo "got $DB_PASSWORD"; exit 4']);
    expect(exec).toMatchObject({ code: 4, stdout: 'got hunter2\n' });
    expect((await dssss(['get', 'web/missing'])).code).toBe(5);
  });
});

describe("the README's client walkthrough", () => {
  it('runs as written with the installed package against npm start', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const start = readme.indexOf('<!-- client-walkthrough -->');
    expect(start).toBeGreaterThanOrEqual(0);
    const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(start))![1]!.replaceAll('http://127.0.0.1:8000', url);
    const home = await mkdtemp(join(tmpdir(), 'dssss-dist-readme-'));
    const env = { ...userEnv(home), PATH: `${join(app, 'node_modules', '.bin')}:${process.env.PATH}` };
    const result = await run('bash', ['-c', `set -euo pipefail\n${block}`], { env, cwd: home });
    expect(result.stderr).toMatch(/logged in as role web/);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^hunter2\nNAME\tVERSION\tUPDATED\tBY\tROLES\nweb\/db-password\t1\t\S+\tweb\/i-[0-9a-f]+\tweb,worker\n/);
    expect(result.stdout).toContain('the app sees hunter2\n');
    expect(await readFile(join(home, 'db-password.txt'), 'utf8')).toBe('hunter2');
    expect((await stat(join(home, 'db-password.txt'))).mode & 0o777).toBe(0o600);
  });
});

describe('the library, imported from the installed package', () => {
  it('runs in JavaScript as a user would write it', async () => {
    const home = await mkdtemp(join(tmpdir(), 'dssss-dist-lib-'));
    const identity = await run(join(app, 'node_modules', '.bin', 'dssss'), ['dev', 'identity', '--role', 'web'], { env: userEnv(home), cwd: home });
    expect(identity.code).toBe(0);
    await writeFile(
      join(app, 'consumer.mjs'),
      `import { DssssClient, DssssClientError } from 'dssss';
const client = new DssssClient({ url: process.argv[2], document: process.argv[3], env: { AWS_EC2_METADATA_DISABLED: 'true' } });
await client.put('web/lib/api-key', 'k-1', { roles: ['web'] });
const secret = await client.get('web/lib/api-key');
const all = await client.getAll('web/lib');
let code;
try { await client.get('web/lib/none'); } catch (err) { code = err instanceof DssssClientError ? err.code : 'other'; }
console.log(JSON.stringify({ value: secret.value, version: secret.version, names: [...all.keys()], code }));
`,
    );
    const consumer = await run(process.execPath, ['consumer.mjs', url, identity.stdout.trim()], { cwd: app });
    expect(consumer.stderr).toBe('');
    expect(JSON.parse(consumer.stdout)).toEqual({ value: 'k-1', version: 1, names: ['web/lib/api-key'], code: 'not_found' });
  });

  it('type-checks in TypeScript against the installed declarations', async () => {
    await writeFile(
      join(app, 'consumer.ts'),
      `import { DssssClient, DssssClientError, MemoryTokenStore, type DssssErrorCode, type Secret } from 'dssss';
const client = new DssssClient({ url: 'https://dssss.example.com', tokenStore: new MemoryTokenStore(), cacheTtlMs: 1000, method: 'iam' });
export async function read(): Promise<string> {
  const secret: Secret = await client.get('app/db-password', { forceFetch: true });
  return secret.value;
}
export function codeOf(err: unknown): DssssErrorCode | undefined {
  return err instanceof DssssClientError ? err.code : undefined;
}
// @ts-expect-error roles are required
void client.put('app/x', 'v', {});
`,
    );
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: false, typeRoots: [join(root, 'node_modules', '@types')], types: ['node'] },
        files: ['consumer.ts'],
      }),
    );
    const tsc = await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: app });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.code).toBe(0);
  });
});
