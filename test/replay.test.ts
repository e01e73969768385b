// Replay of identity documents: nonce binding of an instance's first login (stored through
// the storage interface, so it survives restarts), and the maximum document age.

import { createHash, randomBytes } from 'node:crypto';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { describe, expect, it } from 'vitest';
import { createApp } from '../lambda/app';
import { loadConfig } from '../lambda/config';
import { assertDocumentAge, NonceBindings } from '../lambda/core/replay';
import { createDevCa, signIdentityDocument } from '../lambda/identity/dev-ca';
import { createRuntime, LEGACY_BINDINGS_MARKER } from '../lambda/runtime';
import { AWS_TEST_ENV, FakeAws } from './support/fake-aws';
import { ec2AndIamOnTheWire, errorOf, localFixture, type Fixture } from './helpers';

const nonce = () => randomBytes(24).toString('base64url');

async function loginWith(f: Fixture, document: string, headerNonce?: string): Promise<Response> {
  return f.request('GET', '/v1/auth', { headers: { Authentication: document, ...(headerNonce ? { 'X-Dssss-Nonce': headerNonce } : {}) } });
}

describe('nonce binding (DSSSS_NONCE_MODE=optional, the default)', () => {
  it('binds the first login that sends a nonce; later logins need that nonce, also after a restart', async () => {
    const f = await localFixture();
    const document = await f.identity('web');
    const mine = nonce();
    expect((await loginWith(f, document, mine)).status).toBe(200);
    expect((await loginWith(f, document, mine)).status).toBe(200);

    // Whoever copied the document, with their own nonce or none, is refused; the audit line
    // tells the operator why (the RefusedLoginSpike runbook reads these reasons).
    expect(await errorOf(await loginWith(f, document, nonce()))).toMatchObject({ status: 401, code: 'invalid_credentials' });
    expect(f.audit.at(-1)).toMatchObject({ operation: 'login', outcome: 'denied', code: 'invalid_credentials', reason: 'nonce_mismatch' });
    expect(await errorOf(await loginWith(f, document))).toMatchObject({ status: 401, message: expect.stringMatching(/bound to a nonce/) });
    expect(f.audit.at(-1)).toMatchObject({ reason: 'nonce_missing' });
    expect((await loginWith(f, f.document('i-0fedcba9876543210'))).status).toBe(401);
    expect(f.audit.at(-1)).toMatchObject({ reason: 'unknown_instance' });
    // Also through the Authentication header on a secret route.
    const direct = await f.request('GET', '/v1/secret/app/x', { headers: { Authentication: document } });
    expect(direct.status).toBe(401);

    const restarted = await localFixture({ DSSSS_DATA_DIR: f.dir });
    expect((await loginWith(restarted, document, nonce())).status).toBe(401);
    expect((await loginWith(restarted, document, mine)).status).toBe(200);
  });

  it('lets instances that never sent a nonce log in as before, and keeps instances apart', async () => {
    const f = await localFixture();
    const a = await f.identity('web');
    const b = await f.identity('web');
    expect((await loginWith(f, a)).status).toBe(200);
    expect((await loginWith(f, a)).status).toBe(200);
    expect((await loginWith(f, b, nonce())).status).toBe(200);
    expect((await loginWith(f, a)).status).toBe(200);
  });

  it('stores a digest of the nonce, not the nonce', async () => {
    const f = await localFixture();
    const document = await f.identity('web');
    const mine = nonce();
    await loginWith(f, document, mine);
    const { readdir, readFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const files = (await readdir(join(f.dir, 'meta'))).filter((name) => name.startsWith('nonce-'));
    expect(files).toHaveLength(1);
    expect(await readFile(join(f.dir, 'meta', files[0]!), 'utf8')).not.toContain(mine);
  });

  it('refuses a malformed nonce with 400, and does not bind for an unregistered instance', async () => {
    const f = await localFixture();
    expect((await loginWith(f, await f.identity('web'), 'short')).status).toBe(400);
    const stranger = f.document('i-0123456789abcdef0');
    expect((await loginWith(f, stranger, nonce())).status).toBe(401);
    await f.registry.register('i-0123456789abcdef0', '111122223333', 'web');
    expect((await loginWith(f, stranger, nonce())).status).toBe(200);
  });
});

describe('DSSSS_NONCE_MODE', () => {
  it('required: an EC2 login without a nonce is refused', async () => {
    const f = await localFixture({ DSSSS_NONCE_MODE: 'required' });
    const document = await f.identity('web');
    expect(await errorOf(await loginWith(f, document))).toMatchObject({ status: 401, message: expect.stringMatching(/requires/) });
    expect((await loginWith(f, document, nonce())).status).toBe(200);
  });

  it('off: the header is ignored', async () => {
    const f = await localFixture({ DSSSS_NONCE_MODE: 'off' });
    const document = await f.identity('web');
    expect((await loginWith(f, document, nonce())).status).toBe(200);
    expect((await loginWith(f, document, nonce())).status).toBe(200);
    expect((await loginWith(f, document)).status).toBe(200);
  });
});

describe('NonceBindings under concurrent first logins', () => {
  it('binds exactly one nonce; every other first login is refused', async () => {
    const values = new Map<string, string>();
    const store = {
      read: async (key: string) => values.get(key),
      createIfAbsent: async (key: string, value: string) => {
        await new Promise((r) => setTimeout(r, Math.random() * 5));
        if (values.has(key)) return false;
        values.set(key, value);
        return true;
      },
    };
    const bindings = new NonceBindings(store, 'optional');
    const nonces = Array.from({ length: 20 }, nonce);
    const results = await Promise.allSettled(nonces.map((n) => bindings.check('i-0123456789abcdef0', n)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const winner = nonces[results.findIndex((r) => r.status === 'fulfilled')]!;
    await expect(bindings.check('i-0123456789abcdef0', winner)).resolves.toBeUndefined();
  });

  it('treats a malformed stored binding as an integrity failure (503), not a match', async () => {
    const bindings = new NonceBindings({ read: async () => "garbage", createIfAbsent: async () => false }, 'optional');
    await expect(bindings.check('i-0123456789abcdef0', nonce())).rejects.toMatchObject({ code: 'integrity', status: 503 });
  });
});

describe('maximum document age (DSSSS_MAX_DOCUMENT_AGE_SECONDS)', () => {
  it('refuses a document whose pendingTime is older than the limit, through the API', async () => {
    const f = await localFixture({ DSSSS_MAX_DOCUMENT_AGE_SECONDS: '3600' });
    await f.registry.register('i-00000000000000001', '111122223333', 'web');
    const at = (ms: number) => f.document('i-00000000000000001', '111122223333', { pendingTime: new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') });
    expect((await loginWith(f, at(f.clock.time - 3000_000))).status).toBe(200);
    expect(await errorOf(await loginWith(f, at(f.clock.time - 3700_000)))).toMatchObject({ status: 401, message: expect.stringMatching(/3600 seconds/) });
  });

  it('refuses a document without a valid pendingTime when a limit is set, and ignores age without one', () => {
    expect(() => assertDocumentAge(undefined, Date.now(), 60)).toThrow(expect.objectContaining({ code: 'invalid_credentials' }));
    expect(() => assertDocumentAge('yesterday', Date.now(), 60)).toThrow(expect.objectContaining({ code: 'invalid_credentials' }));
    expect(() => assertDocumentAge('2001-01-01T00:00:00Z', Date.now(), undefined)).not.toThrow();
  });
});

describe('nonce bindings an earlier release kept in Parameter Store (DSSSS_LEGACY_NONCE_BINDINGS=auto, the default)', () => {
  async function awsDeployment(fake: FakeAws) {
    // The SDK's clients (and the EC2 client's signing, which borrows their credentials) read the process's environment.
    Object.assign(process.env, AWS_TEST_ENV);
    fake.createTable('bookkeeping', 'k');
    const ca = createDevCa();
    const config = loadConfig({
      DSSSS_BACKEND: 'aws',
      DSSSS_KMS_KEY_ID: 'alias/test',
      DSSSS_ALLOWED_ACCOUNTS: fake.account,
      DSSSS_DISTINGUISHED_ROLES: 'none',
      DSSSS_EXTRA_CERTS: ca.certPem,
      DSSSS_AUDIT_LOG: 'off',
      DSSSS_BOOKKEEPING_TABLE: 'bookkeeping',
      ...AWS_TEST_ENV,
    });
    const app = createApp(await createRuntime(config));
    const document = (instanceId: string) => {
      fake.addInstance(instanceId, fake.account, 'web');
      return signIdentityDocument({ instanceId, accountId: fake.account, region: 'us-east-1', pendingTime: new Date().toISOString() }, ca);
    };
    const login = (doc: string, n?: string) => app.request('/v1/auth', { headers: { Authentication: doc, ...(n ? { 'X-Dssss-Nonce': n } : {}) } });
    return { document, login };
  }
  const binding = (n: string) => JSON.stringify({ v: 1, sha256: createHash('sha256').update(n).digest('hex') });
  const item = (fake: FakeAws, key: string) => [...(fake.snapshot().tables.get('bookkeeping')?.items.values() ?? [])].find((i) => (i.k as { S?: string }).S === key);

  it('a deployment that never had any looks once, remembers it in the table, and reads none on logins', async () => {
    const fake = new FakeAws();
    const offTheWire = await ec2AndIamOnTheWire(fake);
    try {
      const { document, login } = await awsDeployment(fake);
      expect((await login(document('i-00000000000000e0'))).status).toBe(200);
      expect(fake.counts()['SSM.GetParametersByPath']?.requests).toBe(1); // the one look, at the first binding miss
      fake.resetCounts();
      for (let i = 1; i < 5; i++) expect((await login(document(`i-00000000000000e${i}`))).status).toBe(200);
      expect(Object.keys(fake.counts()).filter((api) => api.startsWith('SSM.'))).toEqual([]);
      expect(item(fake, LEGACY_BINDINGS_MARKER)).toMatchObject({ v: { S: 'none' } });
    } finally {
      fake.restore();
      await offTheWire();
    }
  });

  it('a deployment upgraded with bindings there keeps them binding, and moves each to the table at its first use', async () => {
    const fake = new FakeAws();
    const offTheWire = await ec2AndIamOnTheWire(fake);
    try {
      const old = nonce();
      await new SSMClient({}).send(new PutParameterCommand({ Name: '/dssss/meta/nonce-i-00000000000000f1', Value: binding(old), Type: 'String' }));
      const { document, login } = await awsDeployment(fake);
      const doc = document('i-00000000000000f1');
      expect((await login(doc)).status).toBe(401);
      expect((await login(doc, nonce())).status).toBe(401);
      expect((await login(doc, old)).status).toBe(200);
      expect(item(fake, 'nonce-i-00000000000000f1')).toMatchObject({ v: { S: binding(old) } });
    } finally {
      fake.restore();
      await offTheWire();
    }
  });
});
