// Concurrency: many writers on one name, with readers alongside, on the local backends and on
// (mocked) Parameter Store; and many cold starts at once on one fresh data dir or deployment.
// Every acknowledged write is a readable version holding what was written, no read ever sees
// anything else, and all the cold starts end with one seal key whose tokens every one accepts.

import { readdir, readFile, rm } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRegistry } from '../../lambda/adapters/local-registry';
import { createApp } from '../../lambda/app';
import { loadConfig } from '../../lambda/config';
import { createDevCa, signIdentityDocument, type DevCa } from '../../lambda/identity/dev-ca';
import { createService } from '../../lambda/runtime';
import { localFixture } from '../helpers';
import { AWS_TEST_ENV, FakeAws } from './fake-aws';

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
    const { conflicts } = await raceOnOneName(request, tokens, 'race/new', 40, 40, new Map());
    expect(conflicts, 'the creates really raced').toBeGreaterThan(0);
  });

  it('overwriting it: every overwrite is its own version, readers see only whole values', async () => {
    const { acknowledged, conflicts } = await raceOnOneName(request, tokens, 'race/new', 60, 60, await versionsOf(request, tokens[0]!, 'race/new'));
    expect(conflicts).toBe(0);
    expect(acknowledged.size).toBeGreaterThanOrEqual(61);
  });

  it('survives a restart with every version intact', async () => {
    const before = await versionsOf(request, tokens[0]!, 'race/new');
    const restarted = createApp(await createService(loadConfig({ DSSSS_DATA_DIR: f.dir })));
    const again: Request = async (method, path, token) => restarted.request(path, { method, headers: { Reauthentication: token! } });
    expect(await versionsOf(again, tokens[0]!, 'race/new')).toEqual(before);
  });
});

describe('many writers on one name, Parameter Store (mocked)', () => {
  let fake: FakeAws;
  let request: Request;
  let tokens: string[];

  beforeAll(async () => {
    fake = new FakeAws();
    const ca = createDevCa();
    const app = createApp(await createService(awsConfig(ca)));
    request = async (method, path, token, body) =>
      app.request(path, { method, headers: token === undefined ? {} : { Reauthentication: token }, body: body === undefined ? undefined : JSON.stringify(body) });
    tokens = [];
    for (let i = 0; i < 5; i++) {
      const id = `i-00000000000000d${i}`;
      fake.addInstance(id, '111122223333', 'web');
      tokens.push(await loginWith(app, awsDocument(ca, id)));
    }
  });
  afterAll(() => fake.restore());

  it('creating it: one create wins (a conditional create), the rest are 409s or later versions', async () => {
    const { conflicts } = await raceOnOneName(request, tokens, 'race/ssm', 30, 30, new Map());
    expect(conflicts, 'the creates really raced').toBeGreaterThan(0);
  });

  it('overwriting it: every overwrite is its own parameter version, readers see only whole values', async () => {
    const { conflicts } = await raceOnOneName(request, tokens, 'race/ssm', 40, 40, await versionsOf(request, tokens[0]!, 'race/ssm'));
    expect(conflicts).toBe(0);
  });
});

describe('many cold starts at once', () => {
  it('on one fresh local data dir: one seal key, one CA, every token accepted by every process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dssss-cold-'));
    try {
      const apps = await Promise.all(Array.from({ length: 8 }, async () => createApp(await createService(loadConfig({ DSSSS_DATA_DIR: dir })))));
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
    try {
      const ca = createDevCa();
      const apps = await Promise.all(Array.from({ length: 20 }, async () => createApp(await createService(awsConfig(ca)))));
      const ids = apps.map((_, i) => `i-0000000000000f${String(i).padStart(2, '0')}`);
      for (const id of ids) fake.addInstance(id, '111122223333', 'web');
      const tokens = await Promise.all(apps.map((app, i) => loginWith(app, awsDocument(ca, ids[i]!))));
      await expectCrossAccepted(apps, tokens);
      expect(fake.versions('/dssss/meta/seal-key')).toHaveLength(1);
      expect(fake.calls.filter((c) => c === 'KMS.GenerateDataKey').length).toBeGreaterThan(1); // they really raced
    } finally {
      fake.restore();
    }
  });
});

// ---- helpers ----

function awsConfig(ca: DevCa) {
  return loadConfig({ DSSSS_BACKEND: 'aws', DSSSS_KMS_KEY_ID: 'alias/test', DSSSS_ALLOWED_ACCOUNTS: '111122223333', DSSSS_EXTRA_CERTS: ca.certPem, DSSSS_AUDIT_LOG: 'off' });
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
