// Properties, over arbitrary names, values (empty, binary as base64, any Unicode including
// control characters and lone surrogates) and role lists: a secret sealed and stored reads back
// exactly, or is refused with 413 exactly when it cannot fit; and any single flipped bit of a
// stored record or a token is refused, in the envelope and token code and through the API.

import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../lambda/app';
import { loadConfig } from '../../lambda/config';
import { MAX_RECORD_LENGTH, openSecret, sealSecret, type SealKey, type SecretPayload } from '../../lambda/core/envelope';
import { DssssError } from '../../lambda/core/errors';
import { MAX_SECRET_BYTES } from '../../lambda/core/service';
import { deriveTokenKey, issueToken, verifyToken, type TokenClaims } from '../../lambda/core/token';

const HOME = '111122223333';
import { createDevCa, signIdentityDocument } from '../../lambda/identity/dev-ca';
import { createRuntime } from '../../lambda/runtime';
import { ec2AndIamOnTheWire, localFixture, type Fixture } from '../helpers';
import { AWS_TEST_ENV, FakeAws } from '../support/fake-aws';

// Many starts: one development CA for all of them (test/support/one-dev-ca.ts).
vi.mock('../../lambda/identity/dev-ca', (original) => import('../support/one-dev-ca').then((m) => m.oneDevCa(original)));

// Reproducible by default; FC_SEED=<n> explores elsewhere.
const seed = process.env.FC_SEED === undefined ? 20261125 : Number(process.env.FC_SEED);
const runs = (numRuns: number) => ({ numRuns, seed });

// ---- arbitraries ----

const segment = fc.stringMatching(/^[A-Za-z0-9_.-]{1,24}$/).filter((s) => s !== '.' && s !== '..');
const secretName = fc
  .array(segment, { minLength: 1, maxLength: 10 })
  .map((segments) => segments.join('/'))
  .filter((name) => name.length <= 256);
const role = fc.stringMatching(/^[\w+=,.@-]{1,64}$/);
const roleList = fc.array(role, { minLength: 1, maxLength: 20 });
const anyCodeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const space = fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '\r', '\u00a0', '\ufeff'), minLength: 1, maxLength: 3 });
const secretValue = fc.oneof(
  // Leading and trailing white space is part of the secret.
  fc.tuple(space, fc.string({ maxLength: 40 }), space).map(([a, b, c]) => a + b + c),
  fc.constant(''),
  fc.uint8Array({ maxLength: 3072 }).map((bytes) => Buffer.from(bytes).toString('base64')),
  fc.string({ unit: 'binary', maxLength: 1500 }),
  fc.string({ unit: 'grapheme', maxLength: 400 }),
  fc.string({ unit: anyCodeUnit, maxLength: 300 }),
  // Around the limits: multi-byte characters and characters JSON must escape.
  fc.string({ unit: fc.constantFrom('☃', '𝄞', 'é', 'x', '"', '\\', '\u0000', '\u2028', '\ud800'), minLength: 1000, maxLength: 2200 }),
);

const encoder = new TextEncoder();
const utf8Length = (text: string) => encoder.encode(text).length;

/** The exact length sealSecret gives a payload: {"v","kid","key","box"} with both boxes base64. */
function sealedLength(payload: SecretPayload, kid: string): number {
  const box = 24 + 16 + utf8Length(JSON.stringify(payload));
  return JSON.stringify({ v: 2, kid, key: 'k'.repeat(96), box: 'b'.repeat(4 * Math.ceil(box / 3)) }).length;
}

function refusal(fn: () => unknown): DssssError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof DssssError) return err;
    throw err;
  }
  return undefined;
}

/** The text with bit `bit` (0-7) of character `index` flipped, as a byte of a Latin-1 string. */
function flipBit(text: string, index: number, bit: number): string {
  return text.slice(0, index) + String.fromCharCode(text.charCodeAt(index) ^ (1 << bit)) + text.slice(index + 1);
}

const isWellFormed = (text: string) => Buffer.from(text, 'utf8').toString('utf8') === text;

// Integrity refusals are 503s, which the app logs; here they are expected.
beforeAll(() => {
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
});

// ---- the envelope and tokens, directly ----

describe('sealed records', () => {
  const sealKey: SealKey = { id: '0123456789abcdef', key: nacl.randomBytes(32) };
  const payloadOf = (name: string, roles: string[], value: string): SecretPayload => ({
    name,
    version: 1,
    seq: 1,
    op: 'put',
    value,
    roles: roles.map((r) => `${HOME}:${r}`),
    at: '2026-11-25T12:00:00.000Z',
    by: { account: HOME, role: 'web', principal: 'i-0123456789abcdef0' },
  });
  const open = (record: string, name: string) => openSecret(record, name, sealKey, 1, HOME).payload;

  it('open to exactly what was sealed, or are refused as too large exactly when they would not fit', () => {
    const outcomes = { sealed: 0, tooLarge: 0 };
    fc.assert(
      fc.property(secretName, roleList, secretValue, (name, roles, value) => {
        const payload = payloadOf(name, roles, value);
        const fits = sealedLength(payload, sealKey.id) <= MAX_RECORD_LENGTH;
        let record: string;
        try {
          record = sealSecret(payload, sealKey).record;
        } catch (err) {
          expect(err).toMatchObject({ code: 'too_large' });
          expect(fits).toBe(false);
          outcomes.tooLarge++;
          return;
        }
        expect(fits).toBe(true);
        expect(record.length).toBe(sealedLength(payload, sealKey.id));
        expect(open(record, name)).toEqual(payload);
        if (value.length >= 12) expect(record).not.toContain(value);
        outcomes.sealed++;
      }),
      runs(400),
    );
    // Both sides of the limit were explored.
    expect(outcomes.sealed).toBeGreaterThan(100);
    expect(outcomes.tooLarge).toBeGreaterThan(5);
  });

  it('hold exactly up to the limit: the largest value that fits is sealed, one character more is refused', () => {
    fc.assert(
      fc.property(secretName, roleList, fc.constantFrom('x', '☃', '𝄞', '\u0001', '"'), (name, roles, unit) => {
        const length = (n: number) => sealedLength(payloadOf(name, roles, unit.repeat(n)), sealKey.id);
        fc.pre(length(0) <= MAX_RECORD_LENGTH);
        // The largest n that fits (the length only grows with n).
        let [n, over] = [0, MAX_RECORD_LENGTH];
        while (over - n > 1) {
          const mid = Math.floor((n + over) / 2);
          if (length(mid) <= MAX_RECORD_LENGTH) n = mid;
          else over = mid;
        }
        expect(sealSecret(payloadOf(name, roles, unit.repeat(n)), sealKey).record.length).toBeLessThanOrEqual(MAX_RECORD_LENGTH);
        expect(refusal(() => sealSecret(payloadOf(name, roles, unit.repeat(n + 1)), sealKey))?.code).toBe('too_large');
      }),
      runs(60),
    );
  });

  it('never open under another name', () => {
    fc.assert(
      fc.property(secretName, secretName, roleList, fc.string({ maxLength: 50 }), (name, other, roles, value) => {
        fc.pre(name !== other);
        const { record } = sealSecret(payloadOf(name, roles, value), sealKey);
        expect(refusal(() => open(record, other))?.code).toBe('integrity');
      }),
      runs(200),
    );
  });

  it('are refused with any single bit flipped', () => {
    fc.assert(
      fc.property(secretName, roleList, fc.string({ maxLength: 200 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (name, roles, value, at, bit) => {
        const { record } = sealSecret(payloadOf(name, roles, value), sealKey);
        const flipped = flipBit(record, at % record.length, bit);
        expect(refusal(() => open(flipped, name))?.code).toBe('integrity');
      }),
      runs(1000),
    );
  });

  it('are refused with any single bit flipped: every bit of one record', () => {
    const { record } = sealSecret(payloadOf('app/db', ['web', 'worker'], 'hunter2 ☃'), sealKey);
    for (let at = 0; at < record.length; at++) {
      for (let bit = 0; bit < 8; bit++) {
        expect(refusal(() => open(flipBit(record, at, bit), 'app/db'))?.code, `bit ${bit} of character ${at}`).toBe('integrity');
      }
    }
  });
});

describe('tokens', () => {
  const tokenKey = deriveTokenKey({ id: '0123456789abcdef', key: nacl.randomBytes(32) });
  const now = 1_800_000_000;
  const claims = fc.record({
    role,
    principal: fc.oneof(
      fc.stringMatching(/^i-[0-9a-f]{17}$/),
      fc.tuple(role, fc.string({ unit: 'binary', minLength: 1, maxLength: 64 })).map(([r, session]) => `${r}/${session}`),
    ),
    method: fc.constantFrom('ec2' as const, 'iam' as const),
    iat: fc.integer({ min: now - 3600, max: now }),
    ttl: fc.integer({ min: 60, max: 3600 }),
  });
  const tokenOf = (c: { role: string; principal: string; method: 'ec2' | 'iam'; iat: number; ttl: number }): { token: string; claims: TokenClaims } => {
    const full: TokenClaims = { account: HOME, role: c.role, principal: c.principal, method: c.method, iat: c.iat, exp: c.iat + c.ttl, kid: tokenKey.kid };
    return { token: issueToken(full, tokenKey), claims: full };
  };

  it('verify to exactly their claims until they expire', () => {
    fc.assert(
      fc.property(claims, (c) => {
        const { token, claims: full } = tokenOf(c);
        fc.pre(now < full.exp);
        expect(verifyToken(token, [tokenKey], now)).toEqual(full);
        expect(refusal(() => verifyToken(token, [tokenKey], full.exp))?.code).toBe('token_expired');
      }),
      runs(300),
    );
  });

  it('are refused with any single bit flipped', () => {
    fc.assert(
      fc.property(claims, fc.nat(), fc.integer({ min: 0, max: 7 }), (c, at, bit) => {
        const { token } = tokenOf(c);
        const flipped = flipBit(token, at % token.length, bit);
        expect(refusal(() => verifyToken(flipped, [tokenKey], now))?.code).toBe('invalid_credentials');
      }),
      runs(1000),
    );
  });

  it('are refused with any single bit flipped: every bit of one token', () => {
    const { token } = tokenOf({ role: 'web', principal: 'i-0123456789abcdef0', method: 'ec2', iat: now, ttl: 900 });
    for (let at = 0; at < token.length; at++) {
      for (let bit = 0; bit < 8; bit++) {
        expect(refusal(() => verifyToken(flipBit(token, at, bit), [tokenKey], now))?.code, `bit ${bit} of character ${at}`).toBe('invalid_credentials');
      }
    }
  });
});

// ---- through the API, on the local backends ----

describe('through the API (local backends)', () => {
  let f: Fixture;
  let admin: string;
  const tokens = new Map<string, string>();
  const tokenFor = async (r: string) => {
    if (!tokens.has(r)) tokens.set(r, await f.login(r));
    return tokens.get(r)!;
  };

  beforeAll(async () => {
    f = await localFixture();
    admin = await f.login('dssssadmin');
  });
  afterAll(() => rm(f.dir, { recursive: true, force: true }));

  it('a secret put reads back exactly (JSON and raw), or is a 413 exactly when it cannot fit', async () => {
    const outcomes = { 200: 0, 413: 0 };
    await fc.assert(
      fc.asyncProperty(secretName, roleList, secretValue, async (name, roles, value) => {
        const caller = roles[0]!;
        const token = await tokenFor(caller);
        const unique = [...new Set(roles)];
        // What the service will seal: the principal is an instance id, always 19 characters.
        const payload: SecretPayload = {
          name,
          version: 1,
          seq: 1,
          op: 'put',
          value,
          roles: unique.map((r) => `${HOME}:${r}`),
          at: new Date(f.clock.time).toISOString(),
          by: { account: HOME, role: caller, principal: 'i-0000000000000000' },
        };
        const expected = utf8Length(value) > MAX_SECRET_BYTES || sealedLength(payload, '0123456789abcdef') > MAX_RECORD_LENGTH ? 413 : 200;

        // Names repeat across runs (and while shrinking): start from nothing.
        await f.request('DELETE', `/v1/secret/${name}?purge=true`, { token: admin });
        const response = await f.request('PUT', `/v1/secret/${name}`, { token, body: { Secret: value, Roles: roles } });
        expect(response.status, await response.clone().text()).toBe(expected);
        outcomes[expected]++;
        if (expected === 413) {
          expect((await f.request('GET', `/v1/secret/${name}`, { token })).status).toBe(404);
          return;
        }
        const json = await f.request('GET', `/v1/secret/${name}`, { token });
        expect(await json.json()).toEqual({ name, secret: value, version: 1, roles: unique });
        if (isWellFormed(value)) {
          const raw = await f.request('GET', `/v1/secret/${name}`, { token, headers: { Accept: 'text/plain' } });
          expect(Buffer.from(await raw.arrayBuffer()).equals(Buffer.from(value, 'utf8'))).toBe(true);
        }
      }),
      runs(150),
    );
    expect(outcomes[200]).toBeGreaterThan(50);
    expect(outcomes[413]).toBeGreaterThan(3);
  });

  it('a stored record with any single bit flipped is refused with 503 integrity; its neighbour still reads', async () => {
    const web = await tokenFor('web');
    const file = (name: string) => join(f.dir, 'secrets', `${createHash('sha256').update(name).digest('hex')}.json`);
    await f.request('PUT', '/v1/secret/flip/neighbour', { token: web, body: { Secret: 'intact', Roles: ['web'] } });
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 100 }), fc.nat(), fc.integer({ min: 0, max: 7 }), async (value, at, bit) => {
        await f.request('DELETE', '/v1/secret/flip/target?purge=true', { token: admin });
        expect((await f.request('PUT', '/v1/secret/flip/target', { token: web, body: { Secret: value, Roles: ['web'] } })).status).toBe(200);
        const stored = JSON.parse(await readFile(file('flip/target'), 'utf8')) as { name: string; versions: { version: number; record: string }[] };
        const record = stored.versions[0]!.record;
        stored.versions[0]!.record = flipBit(record, at % record.length, bit);
        await writeFile(file('flip/target'), JSON.stringify(stored));

        // A process that starts now reads the altered file.
        const restarted = await startOn(f.dir);
        const response = await restarted('GET', '/v1/secret/flip/target', web);
        expect(response.status).toBe(503);
        expect(await response.json()).toMatchObject({ error: { code: 'integrity' } });
        expect(response.headers.get('Retry-After')).toMatch(/^\d+$/);
        expect((await restarted('GET', '/v1/secret/flip/neighbour', web)).status).toBe(200);
      }),
      runs(25),
    );
  });

  it('a token with any single bit flipped is refused with 401', async () => {
    const token = await tokenFor('web');
    await f.request('PUT', '/v1/secret/flip/token', { token, body: { Secret: 's', Roles: ['web'] } });
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 0, max: 7 }), async (at, bit) => {
        const flipped = flipBit(token, at % token.length, bit);
        // Bytes no HTTP header may carry never reach the server at all.
        fc.pre(!/[\0\r\n]/.test(flipped));
        const response = await f.request('GET', '/v1/secret/flip/token', { token: flipped });
        expect(response.status).toBe(401);
        expect(await response.text()).not.toContain('"secret"');
      }),
      runs(300),
    );
  });
});

async function startOn(dir: string) {
  const app = createApp(await createRuntime(loadConfig({ DSSSS_DATA_DIR: dir, DSSSS_AUDIT_LOG: 'off', DSSSS_ACCOUNT_ID: '111122223333', DSSSS_WRITER_ROLES: '*' })));
  return (method: string, path: string, token: string) => app.request(path, { method, headers: { Reauthentication: token } });
}

// ---- Parameter Store: someone with ssm:PutParameter but no KMS flips a bit ----

describe('through the API (AWS backends, Parameter Store mocked)', () => {
  let fake: FakeAws;
  let unwire: () => Promise<void>;
  let request: (method: string, path: string, token?: string, body?: unknown) => Promise<Response>;
  let web: string;

  beforeAll(async () => {
    Object.assign(process.env, AWS_TEST_ENV);
    fake = new FakeAws();
    unwire = await ec2AndIamOnTheWire(fake);
    fake.addInstance('i-00000000000000c1', '111122223333', 'web');
    const ca = createDevCa();
    const app = createApp(
      await createRuntime(
        loadConfig({ DSSSS_BACKEND: 'aws', DSSSS_DISTINGUISHED_ROLES: 'dssssadmin', DSSSS_WRITER_ROLES: '*', DSSSS_KMS_KEY_ID: 'alias/test', DSSSS_ALLOWED_ACCOUNTS: '111122223333', DSSSS_EXTRA_CERTS: ca.certPem, DSSSS_AUDIT_LOG: 'off' }),
      ),
    );
    request = async (method, path, token, body) =>
      app.request(path, { method, headers: token === undefined ? {} : { Reauthentication: token }, body: body === undefined ? undefined : JSON.stringify(body) });
    const pendingTime = new Date(Date.now() - 3600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const document = signIdentityDocument({ instanceId: 'i-00000000000000c1', accountId: '111122223333', region: 'us-east-1', pendingTime }, ca);
    const login = await app.request('/v1/auth', { headers: { Authentication: document, Accept: 'text/plain' } });
    expect(login.status).toBe(200);
    web = await login.text();
  });
  afterAll(async () => {
    fake.restore();
    await unwire();
  });

  it('a parameter with any single bit flipped is refused with 503 integrity', async () => {
    const used = new Set<string>();
    await fc.assert(
      fc.asyncProperty(secretName, fc.string({ maxLength: 200 }), fc.nat(), fc.integer({ min: 0, max: 7 }), async (name, value, at, bit) => {
        // A name already altered would refuse the overwrite itself.
        fc.pre(!used.has(name));
        used.add(name);
        const put = await request('PUT', `/v1/secret/${name}`, web, { Secret: value, Roles: ['web'] });
        expect(put.status, await put.clone().text()).toBe(200);
        const { version } = (await put.json()) as { version: number };
        fake.tamper(`/dssss/secrets/${name}`, (record) => flipBit(record, at % record.length, bit));
        const response = await request('GET', `/v1/secret/${name}`, web);
        expect(response.status).toBe(503);
        expect(await response.json()).toMatchObject({ error: { code: 'integrity' } });
        if (version > 1) expect((await request('GET', `/v1/secret/${name}?version=${version - 1}`, web)).status).toBe(503);
      }),
      runs(150),
    );
  });
});
