// Concurrency: many writers on one name, with readers alongside, on the local backends and on
// (mocked) Parameter Store; and many cold starts at once on one fresh data dir or deployment.
// Every acknowledged write is a readable version holding what was written, no read ever sees
// anything else, and all the cold starts end with one seal key whose tokens every one accepts.

import { readdir, readFile, rm } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LocalRegistry } from '../../lambda/adapters/local-registry';
import { createApp } from '../../lambda/app';
import { loadConfig } from '../../lambda/config';
import { createDevCa, signIdentityDocument, type DevCa } from '../../lambda/identity/dev-ca';
import { createRuntime } from '../../lambda/runtime';
import { FileSecretStore } from '../../lambda/adapters/file-store';
import { ec2AndIamOnTheWire, localFixture } from '../helpers';
import { AWS_TEST_ENV, FakeAws } from '../support/fake-aws';

Object.assign(process.env, AWS_TEST_ENV);

type Request = (method: string, path: string, token?: string, body?: unknown) => Promise<Response>;

const pendingTime = () => new Date(Date.now() - 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * `writers` PUTs of distinct values to `name` at once, with `readers` GETs interleaved. Checks
 * that every 200 is a distinct version that reads back as written, that the refusals are only
 * 409s (two creates at once), and that every read saw an acknowledged value or nothing.
 */
async function raceOnOneName(request: Request, tokens: string[], name: string, writers: number, readers: number, before: Map<number, string>) {
  const value = (i: number) => `value-${i}-${'☃'.repeat(i % 5)}`;
  const writes = Array.from({ length: writers }, (_, i) =>
    request('PUT', `/v1/secret/${name}`, tokens[i % tokens.length], { Secret: value(i), Roles: ['web'] }).then(async (r) => ({
      i,
      status: r.status,
      body: (await r.json()) as { version?: number; error?: { code: string } },
    })),
  );
  const reads = Array.from({ length: readers }, (_, i) =>
    request('GET', `/v1/secret/${name}`, tokens[i % tokens.length]).then(async (r) => ({ status: r.status, body: (await r.json()) as { secret?: string; version?: number } })),
  );
  const [written, read] = await Promise.all([Promise.all(writes), Promise.all(reads)]);

  const acknowledged = new Map(before);
  for (const w of written) {
    if (w.status === 409) {
      expect(w.body.error?.code).toBe('conflict');
      continue;
    }
    expect(w.status, JSON.stringify(w.body)).toBe(200);
    expect(acknowledged.has(w.body.version!), `version ${w.body.version} acknowledged twice`).toBe(false);
    acknowledged.set(w.body.version!, value(w.i));
  }
  const versions = [...acknowledged.keys()].sort((a, b) => a - b);
  expect(versions, 'versions without gaps').toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));

  for (const [version, secret] of acknowledged) {
    const response = await request('GET', `/v1/secret/${name}?version=${version}`, tokens[0]);
    expect(await response.json(), `version ${version}`).toEqual({ name, secret, version, roles: ['web'] });
  }
  const latest = (await (await request('GET', `/v1/secret/${name}`, tokens[0])).json()) as { version: number };
  expect(latest.version).toBe(versions.at(-1));

  for (const r of read) {
    if (r.status === 404 && before.size === 0) continue;
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(acknowledged.get(r.body.version!), `a read saw version ${r.body.version}`).toBe(r.body.secret);
  }
  return { acknowledged, conflicts: written.filter((w) => w.status === 409).length };
}

describe('many writers on one name, local backends', () => {
  let f: Awaited<ReturnType<typeof localFixture>>;
  let request: Request;
  let tokens: string[];

  beforeAll(async () => {
    f = await localFixture();
    request = (method, path, token, body) => f.request(method, path, { token, body });
    tokens = await Promise.all(Array.from({ length: 5 }, () => f.login('web')));
  });
  afterAll(() => rm(f.dir, { recursive: true, force: true }));

  it('creating it: one create wins, the rest are 409s or later versions, all readable', async () => {
    const append = vi.spyOn(FileSecretStore.prototype, 'append');
    try {
      const { acknowledged, conflicts } = await raceOnOneName(request, tokens, 'race/new', 40, 40, new Map());
      expect(acknowledged.size + conflicts).toBe(40);
      const lost = (await Promise.all(append.mock.results.map((r) => r.value as Promise<number | undefined>))).filter((v) => v === undefined);
      expect(lost.length, 'the creates really raced: some appends lost and were decided again').toBeGreaterThan(0);
    } finally {
      append.mockRestore();
    }
  });

  it('overwriting it: every overwrite is its own version, readers see only whole values', async () => {
    // Each write is a compare-and-set on the version it replaces: a writer that keeps losing
    // gets a 409 after a few tries, never a silent overwrite.
    const before = await versionsOf(request, tokens[0]!, 'race/new');
    const { acknowledged, conflicts } = await raceOnOneName(request, tokens, 'race/new', 60, 60, before);
    expect(acknowledged.size - before.size + conflicts).toBe(60);
    expect(acknowledged.size - before.size).toBeGreaterThan(10);
  });

  it('survives a restart with every version intact', async () => {
    const before = await versionsOf(request, tokens[0]!, 'race/new');
    const restarted = createApp(await createRuntime(loadConfig({ DSSSS_DATA_DIR: f.dir })));
    const again: Request = async (method, path, token) => restarted.request(path, { method, headers: { Reauthentication: token! } });
    expect(await versionsOf(again, tokens[0]!, 'race/new')).toEqual(before);
  });
});

describe('many writers on one name, Parameter Store (mocked)', () => {
  let fake: FakeAws;
  let unwire: () => Promise<void>;
  let request: Request;
  let tokens: string[];

  beforeAll(async () => {
    fake = new FakeAws();
    unwire = await ec2AndIamOnTheWire(fake);
    const ca = createDevCa();
    const app = createApp(await createRuntime(awsConfig(ca)));
    request = async (method, path, token, body) =>
      app.request(path, { method, headers: token === undefined ? {} : { Reauthentication: token }, body: body === undefined ? undefined : JSON.stringify(body) });
    tokens = [];
    for (let i = 0; i < 5; i++) {
      const id = `i-00000000000000d${i}`;
      fake.addInstance(id, '111122223333', 'web');
      tokens.push(await loginWith(app, awsDocument(ca, id)));
    }
  });
  afterAll(async () => {
    fake.restore();
    await unwire();
  });

  it('creating it: one create wins (a conditional create), the rest are 409s or later versions', async () => {
    // Few enough that every try fits in the 100 versions Parameter Store keeps (a lost try takes one too).
    const puts = fake.calls.filter((c) => c === 'SSM.PutParameter').length;
    const { acknowledged } = await raceOnOneName(request, tokens, 'race/ssm', 10, 10, new Map());
    expect(fake.calls.filter((c) => c === 'SSM.PutParameter').length - puts, 'the creates really raced: some tried again').toBeGreaterThan(acknowledged.size);
  });

  it('overwriting it: every acknowledged overwrite is its own version, readers see only whole values', async () => {
    const before = await versionsOf(request, tokens[0]!, 'race/ssm');
    const { acknowledged, conflicts } = await raceOnOneName(request, tokens, 'race/ssm', 12, 12, before);
    expect(acknowledged.size - before.size + conflicts).toBe(12);
  });
});

/**
 * Finding 2: the owner narrows [owner, evicted] to [owner] while the evicted role overwrites
 * with [owner, evicted]. Whatever the interleaving, no version after the narrowing may be the
 * evicted role's: each write is decided on the version it replaces.
 */
async function evictionRace(request: Request, owner: string, evicted: string, name: string): Promise<void> {
  const setup = await request('PUT', `/v1/secret/${name}`, owner, { Secret: 'v1', Roles: ['web', 'evicted'] });
  expect(setup.status).toBe(200);
  const [narrow, regrant] = await Promise.all([
    request('PUT', `/v1/secret/${name}`, owner, { Secret: 'narrowed', Roles: ['web'] }),
    request('PUT', `/v1/secret/${name}`, evicted, { Secret: 'mine', Roles: ['web', 'evicted'] }),
  ]);
  expect(narrow.status).toBe(200);
  expect([200, 403, 409]).toContain(regrant.status);
  const narrowedAt = ((await narrow.json()) as { version: number }).version;
  const history = (await (await request('GET', `/v1/secret/${name}/versions`, owner)).json()) as { versions: { version: number; by: { role: string } }[] };
  for (const v of history.versions.filter((v) => v.version > narrowedAt)) expect(v.by.role, `${name} v${v.version}`).not.toBe('evicted');
  expect((await request('GET', `/v1/secret/${name}`, evicted)).status, `${name}: the evicted role is out`).toBe(404);
}

describe('an evicted role racing its own removal (finding 2)', () => {
  it('never lands a version after the narrowing, on the local store', async () => {
    const f = await localFixture();
    try {
      const request: Request = (method, path, token, body) => f.request(method, path, { token, body });
      const [owner, evicted] = [await f.login('web'), await f.login('evicted')];
      for (let i = 0; i < 25; i++) await evictionRace(request, owner, evicted, `evict/local-${i}`);
    } finally {
      await rm(f.dir, { recursive: true, force: true });
    }
  });

  it('never lands a version after the narrowing, on Parameter Store (mocked), where a lost write still lands', async () => {
    const fake = new FakeAws();
    const unwire = await ec2AndIamOnTheWire(fake);
    try {
      const ca = createDevCa();
      // Two containers: each request of the race goes to its own.
      const [a, b] = [createApp(await createRuntime(awsConfig(ca))), createApp(await createRuntime(awsConfig(ca)))];
      fake.addInstance('i-00000000000000a1', '111122223333', 'web');
      fake.addInstance('i-00000000000000a2', '111122223333', 'evicted');
      const owner = await loginWith(a, awsDocument(ca, 'i-00000000000000a1'));
      const evicted = await loginWith(b, awsDocument(ca, 'i-00000000000000a2'));
      const request: Request = (method, path, token, body) =>
        Promise.resolve((token === evicted ? b : a).request(path, { method, headers: { Reauthentication: token!, 'Cache-Control': 'no-cache' }, body: body === undefined ? undefined : JSON.stringify(body) }));
      for (let i = 0; i < 25; i++) await evictionRace(request, owner, evicted, `evict/ssm-${i}`);
    } finally {
      fake.restore();
      await unwire();
    }
  });
});

/**
 * Finding 3: an admin's DELETE races a reader's PUT. Whatever the interleaving, an answered
 * DELETE leaves the secret deleted: a PUT decided before the tombstone lands under it, one
 * decided after is refused (409); none lands on top of it or recreates the name.
 */
async function deleteRace(request: Request, admin: string, reader: string, name: string): Promise<void> {
  expect((await request('PUT', `/v1/secret/${name}`, admin, { Secret: 'v1', Roles: ['web', 'dssssadmin'] })).status).toBe(200);
  const [deleted, ...puts] = await Promise.all([
    request('DELETE', `/v1/secret/${name}`, admin),
    request('PUT', `/v1/secret/${name}`, reader, { Secret: 'back', Roles: ['web'] }),
    request('PUT', `/v1/secret/${name}`, reader, { Secret: 'again', Roles: ['web'] }),
  ]);
  expect(deleted.status).toBe(204);
  for (const put of puts) expect([200, 409]).toContain(put.status);
  const read = await request('GET', `/v1/secret/${name}`, admin);
  expect(await read.json(), `${name}: still deleted`).toMatchObject({ error: { code: 'deleted' } });
  const history = (await (await request('GET', `/v1/secret/${name}/versions`, admin)).json()) as { versions: { version: number; deleted: boolean }[] };
  expect(history.versions[0]!.deleted, `${name}: the tombstone is the latest version`).toBe(true);
}

/** After a purge the name is new again: the create rule decides, not the old roles. */
async function purgeThenCreate(request: Request, admin: string, reader: string, name: string): Promise<void> {
  expect((await request('DELETE', `/v1/secret/${name}?purge=true`, admin)).status).toBe(204);
  expect((await request('PUT', `/v1/secret/${name}`, reader, { Secret: 'mine', Roles: ['web'] })).status, `${name}: web is no writer here`).toBe(403);
}

describe('a delete racing a reader\'s write (finding 3)', () => {
  it('stays deleted on the local store, and a purged name is created only by its writers', async () => {
    const f = await localFixture({ DSSSS_WRITER_ROLES: 'dssssadmin' });
    try {
      const request: Request = (method, path, token, body) => f.request(method, path, { token, body });
      const [admin, reader] = [await f.login('dssssadmin'), await f.login('web')];
      for (let i = 0; i < 15; i++) await deleteRace(request, admin, reader, `gone/local-${i}`);
      await purgeThenCreate(request, admin, reader, 'gone/local-0');
    } finally {
      await rm(f.dir, { recursive: true, force: true });
    }
  });

  it('stays deleted on Parameter Store (mocked), with each request in a container of its own', async () => {
    const fake = new FakeAws();
    const unwire = await ec2AndIamOnTheWire(fake);
    try {
      const ca = createDevCa();
      const config = awsConfig(ca, { DSSSS_WRITER_ROLES: 'dssssadmin' });
      const [a, b] = [createApp(await createRuntime(config)), createApp(await createRuntime(config))];
      fake.addInstance('i-00000000000000b1', '111122223333', 'dssssadmin');
      fake.addInstance('i-00000000000000b2', '111122223333', 'web');
      const admin = await loginWith(a, awsDocument(ca, 'i-00000000000000b1'));
      const reader = await loginWith(b, awsDocument(ca, 'i-00000000000000b2'));
      const request: Request = (method, path, token, body) =>
        Promise.resolve((token === reader ? b : a).request(path, { method, headers: { Reauthentication: token!, 'Cache-Control': 'no-cache' }, body: body === undefined ? undefined : JSON.stringify(body) }));
      for (let i = 0; i < 15; i++) await deleteRace(request, admin, reader, `gone/ssm-${i}`);
      await purgeThenCreate(request, admin, reader, 'gone/ssm-0');
    } finally {
      fake.restore();
      await unwire();
    }
  });
});

describe('many cold starts at once', () => {
  it('on one fresh local data dir: one seal key, one CA, every token accepted by every process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dssss-cold-'));
    try {
      const apps = await Promise.all(Array.from({ length: 8 }, async () => createApp(await createRuntime(loadConfig({ DSSSS_DATA_DIR: dir })))));
      // Whichever CA won is the one on disk; every process must trust it.
      const { ensureDevCa } = await import('../../lambda/adapters/dev-ca-files');
      const ca = await ensureDevCa(dir);
      const registry = new LocalRegistry(dir);
      const documents = await Promise.all(
        apps.map(async (_, i) => {
          const id = `i-00000000000000e${i}`;
          await registry.register(id, '111122223333', 'web');
          return signIdentityDocument({ instanceId: id, accountId: '111122223333', region: 'us-east-1', pendingTime: pendingTime() }, ca);
        }),
      );
      // The first requests race too: each process creates or adopts the seal key.
      const tokens = await Promise.all(apps.map((app, i) => loginWith(app, documents[i]!)));
      await expectCrossAccepted(apps, tokens);
      expect(await readdir(join(dir, 'meta'))).toEqual(['seal-key']);
      expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
      expect(JSON.parse(await readFile(join(dir, 'meta', 'seal-key'), 'utf8'))).toMatchObject({ v: 1, kid: expect.any(String) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('on one fresh deployment (Parameter Store and KMS mocked): one seal key, every token accepted by every container', async () => {
    const fake = new FakeAws();
    const unwire = await ec2AndIamOnTheWire(fake);
    try {
      const ca = createDevCa();
      const apps = await Promise.all(Array.from({ length: 20 }, async () => createApp(await createRuntime(awsConfig(ca)))));
      const ids = apps.map((_, i) => `i-0000000000000f${String(i).padStart(2, '0')}`);
      for (const id of ids) fake.addInstance(id, '111122223333', 'web');
      const tokens = await Promise.all(apps.map((app, i) => loginWith(app, awsDocument(ca, ids[i]!))));
      await expectCrossAccepted(apps, tokens);
      expect(fake.versions('/dssss/meta/seal-key')).toHaveLength(1);
      expect(fake.calls.filter((c) => c === 'KMS.GenerateDataKey').length).toBeGreaterThan(1); // they really raced
    } finally {
      fake.restore();
      await unwire();
    }
  });
});

// ---- helpers ----

function awsConfig(ca: DevCa, env: Record<string, string> = {}) {
  return loadConfig({ DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*', DSSSS_KMS_KEY_ID: 'alias/test', DSSSS_ALLOWED_ACCOUNTS: '111122223333', DSSSS_EXTRA_CERTS: ca.certPem, DSSSS_AUDIT_LOG: 'off', ...env });
}

function awsDocument(ca: DevCa, instanceId: string): string {
  return signIdentityDocument({ instanceId, accountId: '111122223333', region: 'us-east-1', pendingTime: pendingTime() }, ca);
}

async function loginWith(app: ReturnType<typeof createApp>, document: string): Promise<string> {
  const response = await app.request('/v1/auth', { headers: { Authentication: document, Accept: 'text/plain' } });
  expect(response.status, await response.clone().text()).toBe(200);
  return response.text();
}

async function expectCrossAccepted(apps: ReturnType<typeof createApp>[], tokens: string[]): Promise<void> {
  const statuses = await Promise.all(
    apps.flatMap((app, i) => tokens.map(async (token, j) => [i, j, (await app.request('/v1/secrets', { headers: { Reauthentication: token } })).status] as const)),
  );
  for (const [i, j, status] of statuses) expect(status, `process ${i} given the token from process ${j}`).toBe(200);
}

async function versionsOf(request: Request, token: string, name: string): Promise<Map<number, string>> {
  const latest = (await (await request('GET', `/v1/secret/${name}`, token)).json()) as { version: number };
  const versions = new Map<number, string>();
  for (let v = 1; v <= latest.version; v++) {
    const body = (await (await request('GET', `/v1/secret/${name}?version=${v}`, token)).json()) as { secret: string };
    versions.set(v, body.secret);
  }
  return versions;
}
