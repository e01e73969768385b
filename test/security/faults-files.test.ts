// Fault injection on the local backends: every node:fs/promises call the store, the key file,
// the registry and the development CA make, failed in turn (EIO, ENOSPC, EACCES) at each step
// of each operation. The client gets a 503 with Retry-After (a start that fails, fails loudly),
// no partial record is ever readable, and everything written before the fault reads back
// unchanged after it, both in the running process and after a restart.

import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LocalRegistry } from '../../lambda/adapters/local-registry';
import { createApp } from '../../lambda/app';
import { loadConfig } from '../../lambda/config';
import { createDevCa, signIdentityDocument, type DevCa } from '../../lambda/identity/dev-ca';
import { createRuntime } from '../../lambda/runtime';

const fsFaults = vi.hoisted(() => ({
  /** Calls are recorded only while a data dir is set. */
  dataDir: undefined as string | undefined,
  calls: [] as string[],
  fault: undefined as { at: number; code: string } | undefined,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  /** Records the call; the injected error, if this is the call to fail. */
  const step = (call: string, path: unknown): Error | undefined => {
    const dir = fsFaults.dataDir;
    if (dir === undefined || typeof path !== 'string' || !path.startsWith(dir)) return undefined;
    const where = relative(dir, path).replace(/\.tmp-[0-9a-f]+/, '.tmp-*').replace(/[0-9a-f]{64}\.json/, '<secret>.json');
    const index = fsFaults.calls.push(`${call} ${where}`) - 1;
    const fault = fsFaults.fault;
    if (fault?.at !== index) return undefined;
    return Object.assign(new Error(`${fault.code}: injected fault, ${call} '${path}'`), { code: fault.code, errno: -5, syscall: call, path });
  };
  const wrap =
    <A extends unknown[], R>(name: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const fault = step(name, args[0]);
      if (fault) throw fault;
      return fn(...args);
    };
  const open = async (...args: Parameters<typeof real.open>) => {
    const fault = step('open', args[0]);
    if (fault) throw fault;
    const handle = await real.open(...args);
    const path = args[0];
    return new Proxy(handle, {
      get(target, key) {
        const value = Reflect.get(target, key, target) as unknown;
        if (typeof value !== 'function') return value;
        if (key === 'writeFile' || key === 'sync' || key === 'close') {
          return async (...a: unknown[]) => {
            const fault = step(`handle.${key}`, path);
            // close(2) releases the descriptor even when it reports an error.
            if (fault && key === 'close') await target.close();
            if (fault) throw fault;
            return (value as (...x: unknown[]) => unknown).apply(target, a);
          };
        }
        return (value as (...x: unknown[]) => unknown).bind(target);
      },
    });
  };
  const mocked = {
    ...real,
    readFile: wrap('readFile', real.readFile),
    readdir: wrap('readdir', real.readdir),
    mkdir: wrap('mkdir', real.mkdir),
    link: wrap('link', real.link),
    rename: wrap('rename', real.rename),
    rm: wrap('rm', real.rm),
    open,
  };
  return { ...mocked, default: mocked };
});

// Many starts: one development CA for all of them (test/support/one-dev-ca.ts).
vi.mock('../../lambda/identity/dev-ca', (original) => import('../support/one-dev-ca').then((m) => m.oneDevCa(original)));

const ACCOUNT = '111122223333';
const WEB = 'i-00000000000000b1';
const ADMIN = 'i-00000000000000b2';
const CODES = ['EIO', 'ENOSPC', 'EACCES'] as const;

const root = mkdtempSync(join(tmpdir(), 'dssss-fsfaults-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

type App = Awaited<ReturnType<typeof start>>;

/** What `npm start` does: config -> createRuntime -> app, on `dir`. */
async function start(dir: string) {
  // The audit log (node:fs streams, never failing a request) is not under test here.
  const app = createApp(await createRuntime(loadConfig({ DSSSS_DATA_DIR: dir, DSSSS_AUDIT_LOG: 'off', DSSSS_ACCOUNT_ID: '111122223333', DSSSS_WRITER_ROLES: '*' })));
  return {
    async request(method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Response> {
      return app.request(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }, { request: { rawPath: path } });
    },
  };
}

let ca: DevCa;
const documents = new Map<string, string>();
function document(instanceId: string): string {
  if (!documents.has(instanceId)) {
    const pendingTime = new Date(Date.now() - 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    documents.set(instanceId, signIdentityDocument({ instanceId, accountId: ACCOUNT, region: 'us-east-1', pendingTime }, ca));
  }
  return documents.get(instanceId)!;
}

async function login(app: App, instanceId: string): Promise<string> {
  const response = await app.request('GET', '/v1/auth', { Authentication: document(instanceId) });
  expect(response.status).toBe(200);
  return ((await response.json()) as { token: string }).token;
}
const as = (token: string) => ({ Reauthentication: token });

const written = [
  { name: 'app/one', versions: ['one-v1', 'one-v2'] },
  { name: 'app/two', versions: ['two ☃ v1'] },
  { name: 'other/three', versions: ['three-v1'] },
];

let emptyDir: string;
let seededDir: string;
let web: string;
let admin: string;

beforeAll(async () => {
  // An empty data dir with only the instance registry (what `dssss dev register` writes).
  emptyDir = freshDir();
  for (const [id, role] of [[WEB, 'web'], [ADMIN, 'dssssadmin']] as const) await new LocalRegistry(emptyDir).register(id, ACCOUNT, role);
  // The same, after a server has run and stored secrets.
  seededDir = freshDir();
  cpSync(emptyDir, seededDir, { recursive: true });
  const app = await start(seededDir);
  ca = createDevCa(); // the one CA every start uses (mocked above)
  web = await login(app, WEB);
  admin = await login(app, ADMIN);
  for (const { name, versions } of written) {
    for (const value of versions) {
      expect((await app.request('PUT', `/v1/secret/${name}`, as(web), { Secret: value, Roles: ['web'] })).status).toBe(200);
    }
  }
});

async function expectWrittenIntact(app: App, label: string, except?: string): Promise<void> {
  for (const { name, versions } of written.filter((w) => w.name !== except)) {
    for (const [i, value] of versions.entries()) {
      const response = await app.request('GET', `/v1/secret/${name}?version=${i + 1}`, as(web));
      expect(response.status, `${label}: ${name} v${i + 1}`).toBe(200);
      expect(await response.json(), `${label}: ${name} v${i + 1}`).toEqual({ name, secret: value, version: i + 1, roles: ['web'] });
    }
  }
}

/** The target of a write after a fault: absent, or one of the allowed whole values. What was seen. */
async function expectOneOf(app: App, name: string, allowed: ({ secret: string; version: number } | 'absent')[], label: string) {
  const response = await app.request('GET', `/v1/secret/${name}`, as(web));
  if (response.status === 404 && allowed.includes('absent')) return 'absent';
  expect(response.status, `${label}: ${name}`).toBe(200);
  const body = (await response.json()) as { secret: string; version: number };
  const seen = { secret: body.secret, version: body.version };
  expect(allowed, `${label}: ${name}`).toContainEqual(seen);
  return seen;
}

interface Scenario {
  readonly name: string;
  readonly world: 'empty' | 'seeded';
  /**
   * 'cold': nothing running yet; 'started': a process that has not served a request yet;
   * 'warm': one that has (seal key and index loaded).
   */
  readonly process: 'cold' | 'started' | 'warm';
  readonly deletes?: string;
  /** Runs the operation on the process `app` (or one it starts): a start that fails rejects, a request answers. */
  run(dir: string, app: App | undefined): Promise<{ app: App; response?: Response }>;
  /** What may be read after the fault, before any retry: the running process and a restart must agree. */
  state?(app: App, label: string): Promise<unknown>;
  /** The client retries, in the running process: it must work. */
  retry?(app: App, label: string): Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: 'the first start on an empty data dir, and its first login',
    world: 'empty',
    process: 'cold',
    run: async (dir) => {
      const app = await start(dir);
      return { app, response: await app.request('GET', '/v1/auth', { Authentication: document(WEB) }) };
    },
    async retry(app, label) {
      await login(app, WEB);
      expect((await app.request('GET', '/v1/secrets', as(await login(app, ADMIN)))).status, label).toBe(200);
    },
  },
  {
    name: 'a restart on a data dir with secrets',
    world: 'seeded',
    process: 'cold',
    run: async (dir) => ({ app: await start(dir) }),
  },
  {
    name: 'the first read after a restart',
    world: 'seeded',
    process: 'started',
    run: async (_dir, app) => ({ app: app!, response: await app!.request('GET', '/v1/secret/app/two', as(web)) }),
  },
  {
    name: 'a login',
    world: 'seeded',
    process: 'warm',
    run: async (_dir, app) => ({ app: app!, response: await app!.request('GET', '/v1/auth', { Authentication: document(WEB) }) }),
    async retry(app) {
      await login(app, WEB);
    },
  },
  {
    name: 'a create',
    world: 'seeded',
    process: 'warm',
    run: async (_dir, app) => ({ app: app!, response: await app!.request('PUT', '/v1/secret/app/new', as(web), { Secret: 'new-value', Roles: ['web'] }) }),
    state: (app, label) => expectOneOf(app, 'app/new', ['absent', { secret: 'new-value', version: 1 }], label),
    async retry(app, label) {
      expect((await app.request('PUT', '/v1/secret/app/new', as(web), { Secret: 'retried', Roles: ['web'] })).status, `${label}: retry`).toBe(200);
      await expectOneOf(app, 'app/new', [{ secret: 'retried', version: 1 }, { secret: 'retried', version: 2 }], label);
    },
  },
  {
    name: 'an overwrite',
    world: 'seeded',
    process: 'warm',
    run: async (_dir, app) => ({ app: app!, response: await app!.request('PUT', '/v1/secret/app/one', as(web), { Secret: 'one-v3', Roles: ['web'] }) }),
    state: (app, label) => expectOneOf(app, 'app/one', [{ secret: 'one-v2', version: 2 }, { secret: 'one-v3', version: 3 }], label),
    async retry(app, label) {
      expect((await app.request('PUT', '/v1/secret/app/one', as(web), { Secret: 'one-retried', Roles: ['web'] })).status, `${label}: retry`).toBe(200);
    },
  },
  {
    name: 'a delete',
    world: 'seeded',
    process: 'warm',
    deletes: 'app/two',
    run: async (_dir, app) => ({ app: app!, response: await app!.request('DELETE', '/v1/secret/app/two', as(admin)) }),
    state: (app, label) => expectOneOf(app, 'app/two', ['absent', { secret: 'two ☃ v1', version: 1 }], label),
    async retry(app, label) {
      expect([204, 404], `${label}: retry`).toContain((await app.request('DELETE', '/v1/secret/app/two', as(admin))).status);
    },
  },
];

/** Removing a leftover temp file after the write has landed: a failure there is absorbed, not reported. */
const CLEANUP = /^rm (.*\/)?\.tmp-\*$/;

async function prepare(scenario: Scenario): Promise<{ dir: string; app: App | undefined }> {
  const dir = freshDir();
  cpSync(scenario.world === 'empty' ? emptyDir : seededDir, dir, { recursive: true });
  const app = scenario.process === 'cold' ? undefined : await start(dir);
  if (scenario.process === 'warm') expect((await app!.request('GET', '/v1/secret/other/three', as(web))).status).toBe(200);
  fsFaults.dataDir = dir;
  fsFaults.calls.length = 0;
  fsFaults.fault = undefined;
  return { dir, app };
}

// The app logs each 5xx; here they are the point, so keep the output readable.
beforeAll(() => {
  vi.spyOn(console, 'error').mockImplementation(() => undefined); // silenced
});

let faultsRun = 0;
afterAll(() => console.log(`fault injection (local files): ${faultsRun} faults injected`));

for (const scenario of scenarios) {
  describe(scenario.name, () => {
    let steps: string[];
    beforeAll(async () => {
      const { dir, app } = await prepare(scenario);
      const { response } = await scenario.run(dir, app);
      if (response) expect(response.status, `${scenario.name} without faults`).toBeLessThan(300);
      steps = [...fsFaults.calls];
      fsFaults.dataDir = undefined;
    });

    it('touches the data dir', () => {
      expect(steps.length).toBeGreaterThan(0);
    });

    it.each(CODES)('on %s at each step: 503 with Retry-After (or a failed start), nothing partial, earlier writes intact', async (code) => {
      for (const [step, call] of steps.entries()) {
        const label = `${code} at step ${step + 1}/${steps.length} (${call})`;
        const { dir, app } = await prepare(scenario);
        fsFaults.fault = { at: step, code };
        const outcome = await scenario.run(dir, app).catch((err: unknown) => ({ failedStart: err }));
        faultsRun++;
        fsFaults.dataDir = undefined;
        fsFaults.fault = undefined;
        expect(fsFaults.calls[step], `${label}: the faulted call`).toBe(call);

        let running: App;
        if ('failedStart' in outcome) {
          // Only a start may fail outright, and it says why; the operator starts it again.
          expect(app, `${label}: a request threw instead of answering`).toBeUndefined();
          expect(outcome.failedStart, label).toMatchObject({ code });
          running = await start(dir);
        } else {
          running = outcome.app;
          expect(outcome.response, `${label}: a start failed without saying so`).toBeDefined();
          const response = outcome.response!;
          if (CLEANUP.test(call) && response.status < 300) {
            // The operation completed; only its leftover temp file stayed. The checks below
            // prove the process and a restart agree on the result.
          } else {
            expect(response.status, label).toBe(503);
            expect(response.headers.get('Retry-After'), `${label}: Retry-After`).toMatch(/^[1-9]\d*$/);
            expect(((await response.json()) as { error: { code: string } }).error.code, label).toBe('unavailable');
          }
        }

        // What is on disk, seen by the running process and by a restart, before any retry.
        const restarted = await start(dir);
        const served = await scenario.state?.(running, label);
        const stored = await scenario.state?.(restarted, `${label}, after a restart`);
        expect(stored, `${label}: what the process serves is what a restart finds`).toEqual(served);
        if (scenario.world === 'seeded') {
          await expectWrittenIntact(running, label, scenario.deletes);
          await expectWrittenIntact(restarted, `${label}, after a restart`, scenario.deletes);
        }
        await scenario.retry?.(running, label);
        // One seal key: a token from before the fault still opens everything after a restart.
        const token = scenario.world === 'seeded' ? web : await login(running, WEB);
        expect((await restarted.request('GET', '/v1/secrets', as(token))).status, `${label}: one seal key`).toBe(200);
      }
    });
  });
}
