// Fault injection on the AWS backends: the runtime's own SSM and KMS clients (mocked with
// aws-sdk-client-mock over the shared stand-in) and its EC2 and IAM query clients (over the
// wire to the same stand-in), each call of each operation made to throttle, fail, drop the
// connection, time out, or hang after acting. The client always gets a 429 or 503 with
// Retry-After, no partial record is ever readable, and everything written before the fault
// reads back unchanged after it. A mocked call fails once, as after the SDK's last retry; a
// call on the wire fails every one of its attempts, the retries included (a throttle is not
// retried: it goes back to the caller).
//
// STS (the IAM login) is not covered here yet: that route is being built separately.

import { createServer, type Server, type Socket } from 'node:net';
import { SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SsmSecretStore } from '../../lambda/adapters/ssm-store';
import { createApp } from '../../lambda/app';
import { loadConfig } from '../../lambda/config';
import { createDevCa, signIdentityDocument } from '../../lambda/identity/dev-ca';
import { awsClientOptions, MAX_ATTEMPTS } from '../../lambda/adapters/aws-client';
import { createRuntime } from '../../lambda/runtime';
import { ec2AndIamOnTheWire } from '../helpers';
import { AWS_TEST_ENV, FAULT_KINDS, FakeAws, type FaultKind } from '../support/fake-aws';

Object.assign(process.env, AWS_TEST_ENV);

const ACCOUNT = '111122223333';
const PREFIX = '/dssss/';
const SEAL_KEY_PARAMETER = `${PREFIX}meta/seal-key`;
const WEB = 'i-00000000000000a1';
const ADMIN = 'i-00000000000000a2';
const NOW = Date.parse('2026-11-25T12:00:00Z');
const clock = { now: () => NOW };

const fake = new FakeAws();
const ca = createDevCa();
fake.addInstance(WEB, ACCOUNT, 'web');
fake.addInstance(ADMIN, ACCOUNT, 'dssssadmin');
const emptyWorld = fake.snapshot();

type App = Awaited<ReturnType<typeof newApp>>;

async function newApp() {
  const config = loadConfig({
    DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*',
    DSSSS_KMS_KEY_ID: 'alias/dssss-test',
    DSSSS_ALLOWED_ACCOUNTS: ACCOUNT,
    DSSSS_PARAMETER_PREFIX: PREFIX,
    DSSSS_EXTRA_CERTS: ca.certPem,
    DSSSS_AUDIT_LOG: 'off', // not under test here; it would print a line per request
    DSSSS_READ_CACHE_SECONDS: '0', // every step reaches the backend, so every step can fail (the cache has its own tests)
  });
  // Deadlines of 2 s a try would make each timeout on the wire a 6 s wait.
  const app = createApp(await createRuntime(config, { clock, queryTimings: { connectionTimeoutMs: 200, requestTimeoutMs: 300, backoffScale: 0.01 } }));
  return {
    async request(method: string, path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Response> {
      return app.request(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    },
  };
}

function document(instanceId: string): string {
  return signIdentityDocument(
    { instanceId, accountId: ACCOUNT, region: 'us-east-1', pendingTime: new Date(NOW - 3600_000).toISOString().replace(/\.\d+Z$/, 'Z') },
    ca,
  );
}

async function login(app: App, instanceId: string): Promise<string> {
  const response = await app.request('GET', '/v1/auth', { Authentication: document(instanceId) });
  expect(response.status).toBe(200);
  return ((await response.json()) as { token: string }).token;
}

const as = (token: string) => ({ Reauthentication: token });

// ---- the world before each fault: secrets written earlier, which must survive it ----

interface Written {
  name: string;
  versions: { version: number; value: string }[];
}
const written: Written[] = [
  { name: 'app/one', versions: [{ version: 1, value: 'one-v1' }, { version: 2, value: 'one-v2' }] },
  { name: 'app/two', versions: [{ version: 1, value: 'two ☃ v1' }] },
  ...Array.from({ length: 14 }, (_, i) => ({ name: `bulk/n${String(i).padStart(2, '0')}`, versions: [{ version: 1, value: `bulk-${i}` }] })),
];
const BULK = written.filter((w) => w.name.startsWith('bulk/')).map((w) => w.name);

let seededWorld: ReturnType<FakeAws['snapshot']>;
let web: string;
let admin: string;
let unwire: () => Promise<void>;

beforeAll(async () => {
  unwire = await ec2AndIamOnTheWire(fake);
  fake.reset(emptyWorld);
  const app = await newApp();
  web = await login(app, WEB);
  admin = await login(app, ADMIN);
  for (const { name, versions } of written) {
    for (const { value } of versions) {
      expect((await app.request('PUT', `/v1/secret/${name}`, as(web), { Secret: value, Roles: ['web'] })).status).toBe(200);
    }
  }
  seededWorld = fake.snapshot();
});

afterAll(async () => {
  fake.restore();
  await unwire();
});

async function expectWrittenIntact(app: App, label: string, except?: string): Promise<void> {
  for (const { name, versions } of written.filter((w) => w.name !== except)) {
    for (const { version, value } of versions) {
      const response = await app.request('GET', `/v1/secret/${name}?version=${version}`, as(web));
      expect(response.status, `${label}: ${name} v${version}`).toBe(200);
      expect(await response.json(), `${label}: ${name} v${version}`).toEqual({ name, secret: value, version, roles: ['web'] });
    }
  }
}

/** The target of a write after a fault: absent, or one of the acceptable whole values. Never a partial record. */
async function expectOneOf(app: App, name: string, allowed: ({ secret: string; version: number } | 'absent')[], label: string) {
  const response = await app.request('GET', `/v1/secret/${name}`, as(web));
  if (response.status === 404 && allowed.includes('absent')) return;
  expect(response.status, `${label}: ${name} after the fault`).toBe(200);
  const body = (await response.json()) as { secret: string; version: number };
  expect(allowed, `${label}: ${name} after the fault`).toContainEqual({ secret: body.secret, version: body.version });
}

// ---- the operations, each from a cold or warm container ----

interface Scenario {
  readonly name: string;
  readonly world: 'empty' | 'seeded';
  /** Warm: the container has loaded the seal key before the operation. */
  readonly warm: boolean;
  /** The secret the operation removes, if any: its own check covers it. */
  readonly deletes?: string;
  run(app: App): Promise<Response>;
  /** What may be read once the fault has cleared, on the same container, before any retry. */
  state?(app: App, label: string): Promise<void>;
  /** The client retries on the same container: it must work. */
  retry?(app: App, label: string): Promise<void>;
}

const scenarios: Scenario[] = [
  {
    name: 'the first login of a new deployment (creates the seal key)',
    world: 'empty',
    warm: false,
    run: (app) => app.request('GET', '/v1/auth', { Authentication: document(WEB) }),
    async retry(app, label) {
      const token = await login(app, WEB);
      expect(fake.versions(SEAL_KEY_PARAMETER), `${label}: one seal key`).toHaveLength(1);
      const elsewhere = await newApp();
      expect((await elsewhere.request('GET', '/v1/secrets', as(token))).status, `${label}: token accepted elsewhere`).toBe(200);
    },
  },
  {
    name: 'a login on a cold container',
    world: 'seeded',
    warm: false,
    run: (app) => app.request('GET', '/v1/auth', { Authentication: document(WEB) }),
    async retry(app) {
      await login(app, WEB);
    },
  },
  {
    name: 'a read on a cold container',
    world: 'seeded',
    warm: false,
    run: (app) => app.request('GET', '/v1/secret/app/two', as(web)),
  },
  {
    name: 'a create',
    world: 'seeded',
    warm: true,
    run: (app) => app.request('PUT', '/v1/secret/app/new', as(web), { Secret: 'new-value', Roles: ['web'] }),
    state: (app, label) => expectOneOf(app, 'app/new', ['absent', { secret: 'new-value', version: 1 }], label),
    async retry(app, label) {
      expect((await app.request('PUT', '/v1/secret/app/new', as(web), { Secret: 'retried', Roles: ['web'] })).status, `${label}: retry`).toBe(200);
      await expectOneOf(app, 'app/new', [{ secret: 'retried', version: 1 }, { secret: 'retried', version: 2 }], label);
    },
  },
  {
    name: 'an overwrite',
    world: 'seeded',
    warm: true,
    run: (app) => app.request('PUT', '/v1/secret/app/one', as(web), { Secret: 'one-v3', Roles: ['web'] }),
    state: (app, label) => expectOneOf(app, 'app/one', [{ secret: 'one-v2', version: 2 }, { secret: 'one-v3', version: 3 }], label),
    async retry(app, label) {
      expect((await app.request('PUT', '/v1/secret/app/one', as(web), { Secret: 'one-retried', Roles: ['web'] })).status, `${label}: retry`).toBe(200);
    },
  },
  {
    name: 'a read of an old version',
    world: 'seeded',
    warm: true,
    run: (app) => app.request('GET', '/v1/secret/app/one?version=1', as(web)),
  },
  {
    name: 'a delete',
    world: 'seeded',
    warm: true,
    deletes: 'app/two',
    run: (app) => app.request('DELETE', '/v1/secret/app/two', as(admin)),
    state: (app, label) => expectOneOf(app, 'app/two', ['absent', { secret: 'two ☃ v1', version: 1 }], label),
    async retry(app, label) {
      expect([204, 404], `${label}: retry`).toContain((await app.request('DELETE', '/v1/secret/app/two', as(admin))).status);
      expect((await app.request('GET', '/v1/secret/app/two', as(web))).status, `${label}: deleted after the retry`).toBe(404);
    },
  },
  {
    name: 'a list over several Parameter Store pages',
    world: 'seeded',
    warm: true,
    run: (app) => app.request('GET', '/v1/secrets?prefix=bulk/&limit=20', as(web)),
    async retry(app, label) {
      const response = await app.request('GET', '/v1/secrets?prefix=bulk/&limit=20', as(web));
      expect(await response.json(), `${label}: the whole list after the fault`).toEqual({ names: BULK });
    },
  },
];

const warmContainers = new Map<Scenario, App>();

/**
 * The scenario's world, restored, and a container on it: a fresh one (cold), or one that has
 * already loaded the seal key (warm; the restored world holds the same key, so it stays valid).
 */
async function prepare(scenario: Scenario): Promise<App> {
  fake.reset(scenario.world === 'empty' ? emptyWorld : seededWorld);
  let app = scenario.warm ? warmContainers.get(scenario) : undefined;
  if (!app) {
    app = await newApp();
    if (scenario.warm) {
      expect((await app.request('GET', '/v1/secret/bulk/n00', as(web))).status).toBe(200);
      // Warm also means the role ids a write pins are known (iam:GetRole answers are kept a minute).
      expect((await app.request('PUT', '/v1/secret/warm/up', as(admin), { Secret: 'w', Roles: ['web', 'dssssadmin'] })).status).toBe(200);
      warmContainers.set(scenario, app);
    }
  }
  fake.calls.length = 0;
  return app;
}

/** The backend calls the operation makes when nothing fails: the steps to fault. */
async function trace(scenario: Scenario): Promise<string[]> {
  const app = await prepare(scenario);
  const response = await scenario.run(app);
  expect(response.status, `${scenario.name} without faults`).toBeLessThan(300);
  return [...fake.calls];
}

const expected: Record<FaultKind, { status: number; code: string }> = {
  throttle: { status: 429, code: 'rate_limited' },
  failure: { status: 503, code: 'unavailable' },
  network: { status: 503, code: 'unavailable' },
  timeout: { status: 503, code: 'unavailable' },
  hang: { status: 503, code: 'unavailable' },
};

// The app logs each 5xx; here they are the point, so keep the output readable.
beforeAll(() => {
  vi.spyOn(console, 'error').mockImplementation(() => undefined); // silenced
});

let faultsRun = 0;
afterAll(() => console.log(`fault injection (AWS backends): ${faultsRun} faults injected`));

for (const scenario of scenarios) describe(scenario.name, () => {
  let steps: string[];
  beforeAll(async () => {
    steps = await trace(scenario);
  });

  it('makes backend calls, each of which is faulted below', () => {
    expect(steps.length).toBeGreaterThan(0);
    expect(steps.every((s) => /^(SSM|KMS|EC2|IAM)\./.test(s))).toBe(true);
  });

  it.each(FAULT_KINDS)('on %s at each step: 429/503 with Retry-After, no partial record, earlier writes intact', async (kind) => {
    for (const [step, call] of steps.entries()) {
      const label = `${kind} at step ${step + 1}/${steps.length} (${call})`;
      const app = await prepare(scenario);
      // On the wire every attempt fails; a throttle has one (it is left to the caller, as the SDK clients leave it).
      fake.arm(kind, step, /^(EC2|IAM)\./.test(call) && kind !== 'throttle' ? MAX_ATTEMPTS : 1);
      const response = await scenario.run(app);
      faultsRun++;
      expect(fake.calls[step], `${label}: the faulted call`).toBe(call);
      expect(response.status, label).toBe(expected[kind].status);
      expect(response.headers.get('Retry-After'), `${label}: Retry-After`).toMatch(/^[1-9]\d*$/);
      expect(response.headers.get('Content-Type'), label).toMatch(/^application\/json/);
      expect(((await response.json()) as { error: { code: string } }).error.code, label).toBe(expected[kind].code);
      fake.disarm();

      await scenario.state?.(app, label);
      if (scenario.world === 'seeded') {
        await expectWrittenIntact(app, label, scenario.deletes);
        expect(fake.versions(SEAL_KEY_PARAMETER), `${label}: the seal key is never replaced`).toEqual(seededWorld.parameters.get(SEAL_KEY_PARAMETER)!.versions);
      }
      await scenario.retry?.(app, label);
    }
  });
});

describe('a hang', () => {
  let server: Server;
  const sockets: Socket[] = [];
  beforeAll(async () => {
    // Accepts the connection, reads the request, never answers.
    server = createServer((socket) => {
      sockets.push(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });

  it("is cut off by the runtime's own client options (3 attempts of 2 s): a 503, not a Lambda timeout", async () => {
    const { port } = server.address() as { port: number };
    const before = sockets.length;
    const client = new SSMClient({ endpoint: `http://127.0.0.1:${port}`, ...awsClientOptions() });
    fake.restore();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const failure = await new SsmSecretStore(client, PREFIX).latest('app/x').then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toMatchObject({ code: 'unavailable', status: 503 });
      expect(sockets.length - before).toBe(MAX_ATTEMPTS);
    } finally {
      warn.mockRestore();
      client.destroy();
    }
  }, 15_000);

  it('ends, once the SDK has a request deadline, as the TimeoutError the fault matrix injects: a 503', async () => {
    const { port } = server.address() as { port: number };
    const before = sockets.length;
    const client = new SSMClient({
      endpoint: `http://127.0.0.1:${port}`,
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 200, requestTimeout: 150, throwOnRequestTimeout: true },
    });
    // The mock answers SSMClient#send; this one call goes to the socket instead.
    fake.restore();
    try {
      const failure = await new SsmSecretStore(client, PREFIX).latest('app/x').then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toMatchObject({ code: 'unavailable', status: 503, retryAfter: expect.any(Number) });
      expect((failure as Error).message).toContain('TimeoutError');
      expect(sockets.length - before).toBe(2); // both attempts reached the socket
    } finally {
      client.destroy();
    }
  });
});
