import { readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { MAX_BODY_BYTES } from '../lambda/app';
import { FileSecretStore } from '../lambda/adapters/file-store';
import { DssssError } from '../lambda/core/errors';
import { READINESS_TTL_MS } from '../lambda/runtime';
import { MAX_SECRET_BYTES } from '../lambda/core/service';
import { ACCOUNT, errorOf, localFixture, type Fixture } from './helpers';

let f: Fixture;
beforeEach(async () => {
  f = await localFixture();
});

async function put(token: string, name: string, secret: string, roles: string[]) {
  return f.request('PUT', `/v1/secret/${name}`, { token, body: { Secret: secret, Roles: roles } });
}

describe('GET /v1/health', () => {
  it('answers without authentication', async () => {
    const response = await f.request('GET', '/v1/health');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });
});

describe('GET /v1/ready', () => {
  const failing = (name: string, awsCode: string) => {
    throw new DssssError('misconfigured', `the server cannot use ${name} (${awsCode}): its configuration or permissions are wrong`, 60, { service: 'kms', awsCode });
  };

  it('says ready when the seal keys load and the store answers', async () => {
    const response = await f.request('GET', '/v1/ready');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ready' });
  });

  it('names the step that failed and why, logs the cause, and keeps its answer a while so a flood costs the store nothing', async () => {
    const generateDataKey = vi.fn(async () => failing('KMS', 'AccessDeniedException'));
    const broken = await localFixture({}, { wrapper: { generateDataKey, unwrap: generateDataKey } });
    const log = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const response = await broken.request('GET', '/v1/ready');
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({
        status: 'unready',
        step: 'seal keys',
        error: { code: 'misconfigured', message: 'the server cannot use KMS (AccessDeniedException): its configuration or permissions are wrong' },
      });
      expect(JSON.parse(String(log.mock.calls.at(-1)![0]))).toMatchObject({ level: 'error', code: 'misconfigured', service: 'kms', awsCode: 'AccessDeniedException' });
      for (let i = 0; i < 5; i++) expect((await broken.request('GET', '/v1/ready')).status).toBe(503);
      expect(generateDataKey).toHaveBeenCalledTimes(1);
      broken.clock.time += READINESS_TTL_MS;
      await broken.request('GET', '/v1/ready');
      expect(generateDataKey).toHaveBeenCalledTimes(2);
    } finally {
      log.mockRestore();
    }
  });

  it('tells a store that does not answer from seal keys that do not load', async () => {
    const probe = await localFixture();
    // The file store, with reads of secrets failing as a broken disk would.
    const failingStore = await localFixture({ DSSSS_DATA_DIR: probe.dir }, {
      store: new Proxy(new FileSecretStore(probe.dir), {
        get: (target, key, receiver) =>
          key === 'latest'
            ? async () => {
                throw Object.assign(new Error('EIO'), { code: 'EIO', syscall: 'read' });
              }
            : Reflect.get(target, key, receiver),
      }),
    });
    const log = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const response = await failingStore.request('GET', '/v1/ready');
      expect(response.status).toBe(503);
      expect(await response.json()).toMatchObject({ status: 'unready', step: 'store', error: { code: 'unavailable' } });
    } finally {
      log.mockRestore();
    }
  });
});

describe('GET /v1/auth', () => {
  it('logs in with an identity document: token in body and Reauthentication header', async () => {
    const response = await f.request('GET', '/v1/auth', { headers: { Authentication: await f.identity('web') } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { token: string; role: string; expiresAt: string };
    expect(body.role).toBe('web');
    expect(response.headers.get('Reauthentication')).toBe(body.token);
    expect(Date.parse(body.expiresAt) - f.clock.time).toBeGreaterThan(14 * 60_000);
    expect(Date.parse(body.expiresAt) - f.clock.time).toBeLessThanOrEqual(15 * 60_000);
    expect(response.headers.get('Cache-Control')).toBe('no-store');
  });

  it('accepts the document with line breaks and PEM armour', async () => {
    const doc = await f.identity('web');
    const armoured = `-----BEGIN PKCS7-----\n${doc.match(/.{1,64}/g)!.join('\n')}\n-----END PKCS7-----`;
    const response = await f.request('GET', '/v1/auth', { headers: { Authentication: armoured.replaceAll('\n', ' ') } });
    expect(response.status).toBe(200);
  });

  it('refuses no document, garbage, and an unregistered instance with 401', async () => {
    const cases: Record<string, string>[] = [{}, { Authentication: 'bm90IGEgZG9jdW1lbnQ=' }, { Authentication: f.document('i-0123456789abcdef0') }];
    for (const headers of cases) {
      const response = await f.request('GET', '/v1/auth', { headers });
      expect(response.status).toBe(401);
      expect((await errorOf(response)).code).toMatch(/unauthenticated|invalid_credentials/);
    }
  });

  it('refuses a document whose account is not the registered one', async () => {
    await f.registry.register('i-0123456789abcdef0', ACCOUNT, 'web');
    const response = await f.request('GET', '/v1/auth', { headers: { Authentication: f.document('i-0123456789abcdef0', '999999999999') } });
    expect(await errorOf(response)).toMatchObject({ status: 401, message: expect.stringMatching(/account/) });
  });

  it('refuses a document altered after signing', async () => {
    await f.registry.register('i-0123456789abcdef0', ACCOUNT, 'web');
    const der = Buffer.from(f.document('i-0123456789abcdef0'), 'base64');
    const at = der.indexOf('i-0123456789abcdef0');
    der[at + 2] = '1'.charCodeAt(0) === der[at + 2] ? '2'.charCodeAt(0) : '1'.charCodeAt(0);
    const response = await f.request('GET', '/v1/auth', { headers: { Authentication: der.toString('base64') } });
    expect(response.status).toBe(401);
  });

  it('never echoes the document in an error', async () => {
    const doc = (await f.identity('web')).slice(0, -8) + 'AAAAAAAA';
    const text = await (await f.request('GET', '/v1/auth', { headers: { Authentication: doc } })).text();
    expect(text).not.toContain(doc.slice(20, 60));
  });
});

describe('authentication on /v1/secret routes', () => {
  it('accepts Reauthentication, Authorization: Bearer, and Authentication (which returns a fresh token)', async () => {
    const web = await f.login('web');
    expect((await put(web, 'app/x', 's', ['web'])).status).toBe(200);

    const bearer = await f.request('GET', '/v1/secret/app/x', { headers: { Authorization: `Bearer ${web}` } });
    expect(bearer.status).toBe(200);

    const direct = await f.request('GET', '/v1/secret/app/x', { headers: { Authentication: await f.identity('web') } });
    expect(direct.status).toBe(200);
    const fresh = direct.headers.get('Reauthentication');
    expect(fresh).toMatch(/^dssss\.v2\./);
    expect((await f.request('GET', '/v1/secret/app/x', { token: fresh! })).status).toBe(200);
  });

  it('refuses no credentials, a malformed Authorization, and a token altered by one byte with 401', async () => {
    const web = await f.login('web');
    await put(web, 'app/x', 's', ['web']);
    const i = web.length - 10;
    const altered = web.slice(0, i) + (web[i] === 'A' ? 'B' : 'A') + web.slice(i + 1);
    const cases: Record<string, string>[] = [{}, { Authorization: 'Basic abc' }, { Reauthentication: altered }, { Authorization: `Bearer ${altered}` }];
    for (const headers of cases) {
      const response = await f.request('GET', '/v1/secret/app/x', { headers });
      expect(response.status).toBe(401);
      expect(await response.text()).not.toContain(altered);
    }
  });

  it('refuses a token past its expiry with 401 token_expired', async () => {
    const web = await f.login('web');
    await put(web, 'app/x', 's', ['web']);
    f.clock.time += 15 * 60_000;
    expect(await errorOf(await f.request('GET', '/v1/secret/app/x', { token: web }))).toMatchObject({ status: 401, code: 'token_expired' });
  });
});

describe('PUT and GET /v1/secret/{name}', () => {
  it('stores a secret and reads it back as JSON and as raw text', async () => {
    const web = await f.login('web');
    const response = await put(web, 'app/db-password', 'hunter2 ☃', ['web', 'worker']);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ name: 'app/db-password', version: 1 });

    const json = await f.request('GET', '/v1/secret/app/db-password', { token: web });
    expect(await json.json()).toEqual({ name: 'app/db-password', secret: 'hunter2 ☃', version: 1, roles: ['web', 'worker'] });

    const raw = await f.request('GET', '/v1/secret/app/db-password', { token: web, headers: { Accept: 'text/plain' } });
    expect(raw.headers.get('Content-Type')).toMatch(/^text\/plain/);
    expect(await raw.text()).toBe('hunter2 ☃');
  });

  it('accepts lower-case keys', async () => {
    const web = await f.login('web');
    const response = await f.request('PUT', '/v1/secret/lower', { token: web, body: { secret: 's', roles: ['web'] } });
    expect(response.status).toBe(200);
  });

  it('keeps older versions readable with ?version=N', async () => {
    const web = await f.login('web');
    await put(web, 'v', 'one', ['web']);
    expect(await (await put(web, 'v', 'two', ['web'])).json()).toEqual({ name: 'v', version: 2 });
    expect(await (await f.request('GET', '/v1/secret/v?version=1', { token: web })).json()).toMatchObject({ secret: 'one', version: 1 });
    expect(await (await f.request('GET', '/v1/secret/v', { token: web })).json()).toMatchObject({ secret: 'two', version: 2 });
    expect((await f.request('GET', '/v1/secret/v?version=3', { token: web })).status).toBe(404);
    expect((await f.request('GET', '/v1/secret/v?version=x', { token: web })).status).toBe(400);
    expect((await f.request('GET', '/v1/secret/v?version=0', { token: web })).status).toBe(400);
  });

  it('answers a reader outside the secret\'s roles exactly as for a missing name (finding 6), and never shows the value', async () => {
    await put(await f.login('web'), 'app/x', 'topsecret', ['web']);
    for (const role of ['other', 'dssssadmin']) {
      const token = await f.login(role);
      const response = await f.request('GET', '/v1/secret/app/x', { token });
      const missing = await f.request('GET', '/v1/secret/app/nothing-here', { token });
      expect(response.status).toBe(404);
      const [hidden, absent] = [await errorOf(response), await errorOf(missing)];
      expect(hidden.code).toBe(absent.code);
      expect(hidden.message.replace('app/x', 'NAME')).toBe(absent.message.replace('app/nothing-here', 'NAME'));
      expect(JSON.stringify(hidden)).not.toContain('topsecret');
    }
    // The audit line keeps the difference.
    expect(f.audit.filter((a) => a.name === 'app/x' && a.operation === 'get').map((a) => a.reason)).toEqual(['not_a_reader', 'not_a_reader']);
  });

  it('closes older versions to a role the latest version no longer names', async () => {
    const web = await f.login('web');
    await put(web, 'n', 'old', ['web', 'worker']);
    await put(web, 'n', 'new', ['web']);
    expect((await f.request('GET', '/v1/secret/n?version=1', { token: await f.login('worker') })).status).toBe(404);
  });

  it('refuses an overwrite by a role outside the existing roles with 403, leaving the secret intact', async () => {
    await put(await f.login('web'), 'app/x', 'original', ['web']);
    const response = await put(await f.login('attacker'), 'app/x', 'replaced', ['attacker']);
    expect(await errorOf(response)).toMatchObject({ status: 403, code: 'forbidden' });
    expect(await (await f.request('GET', '/v1/secret/app/x', { token: await f.login('web') })).json()).toMatchObject({ secret: 'original', version: 1 });
  });

  it('lets a role in the existing roles, or a distinguished role, overwrite', async () => {
    await put(await f.login('web'), 'app/x', 'one', ['web', 'worker']);
    expect(await (await put(await f.login('worker'), 'app/x', 'two', ['web', 'worker'])).json()).toEqual({ name: 'app/x', version: 2 });
    expect((await put(await f.login('dssssadmin'), 'app/x', 'three', ['web'])).status).toBe(200);
  });

  it('returns 404 for a secret that does not exist', async () => {
    expect(await errorOf(await f.request('GET', '/v1/secret/nope', { token: await f.login('web') }))).toMatchObject({ status: 404, code: 'not_found' });
  });

  it.each([
    ['not JSON', '{"Secret":'],
    ['no roles', { Secret: 's' }],
    ['no secret', { Roles: ['web'] }],
    ['empty roles', { Secret: 's', Roles: [] }],
    ['a role that is not an IAM role name', { Secret: 's', Roles: ['no spaces'] }],
    ['a number for the secret', { Secret: 42, Roles: ['web'] }],
    ['both Secret and secret', { Secret: 's', secret: 't', Roles: ['web'] }],
    ['an unknown field', { Secret: 's', Roles: ['web'], Extra: 1 }],
    ['an array body', ['s']],
  ])('refuses a body with %s with 400', async (_why, body) => {
    const response = await f.request('PUT', '/v1/secret/x', { token: await f.login('web'), body });
    expect(await errorOf(response)).toMatchObject({ status: 400, code: 'bad_request' });
  });

  it('never echoes the secret in a validation error', async () => {
    const response = await f.request('PUT', '/v1/secret/x', { token: await f.login('web'), body: { Secret: 'hunter2', Roles: 'web' } });
    expect(response.status).toBe(400);
    expect(await response.text()).not.toContain('hunter2');
  });

  it('refuses a secret over the limit and a body over the limit with 413', async () => {
    const web = await f.login('web');
    const big = await put(web, 'big', 'x'.repeat(MAX_SECRET_BYTES + 1), ['web']);
    expect(await errorOf(big)).toMatchObject({ status: 413, message: expect.stringContaining(String(MAX_SECRET_BYTES)) });
    expect((await put(web, 'fits', 'x'.repeat(MAX_SECRET_BYTES), ['web'])).status).toBe(200);
    const huge = await f.request('PUT', '/v1/secret/huge', { token: web, body: 'x'.repeat(MAX_BODY_BYTES + 1) });
    expect(await errorOf(huge)).toMatchObject({ status: 413, code: 'too_large' });
  });

  it.each(['a/../b', '..', 'a%2F..%2Fb', 'a//b', 'a%00b', 'sp%20ace', 'а'])('refuses the name %s with 400', async (name) => {
    const web = await f.login('web');
    expect(await errorOf(await f.request('GET', `/v1/secret/${name}`, { token: web }))).toMatchObject({ status: 400 });
    expect((await put(web, name, 's', ['web'])).status).toBe(400);
  });

  it('refuses a body with a key twice (a proxy may read the first, JSON.parse keeps the last), and one nested too deeply', async () => {
    const web = await f.login('web');
    for (const body of [
      '{"Secret":"s","Roles":["nobody"],"Roles":["web"]}',
      '{"Secret":"s","Roles":["web"],"\\u0052oles":["other"]}',
      '{"Secret":"s","Roles":["web"],"x":{"a":1,"a":2}}',
      `{"Secret":"s","Roles":["web"],"x":${'['.repeat(30_000)}${']'.repeat(30_000)}}`,
    ]) {
      expect(await errorOf(await f.request('PUT', '/v1/secret/app/dup', { token: web, body }))).toMatchObject({ status: 400, code: 'bad_request' });
    }
    expect((await f.request('GET', '/v1/secret/app/dup', { token: web })).status).toBe(404);
  });

  it('refuses a record moved to another name', async () => {
    const web = await f.login('web');
    await put(web, 'app/a', 'secret-a', ['web']);
    await put(web, 'app/b', 'secret-b', ['web']);
    // Someone with write access to the store copies a's sealed record over b's.
    const file = (name: string) => join(f.dir, 'secrets', `${createHash('sha256').update(name).digest('hex')}.json`);
    const a = JSON.parse(await readFile(file('app/a'), 'utf8')) as { versions: unknown[] };
    await writeFile(file('app/b'), JSON.stringify({ name: 'app/b', versions: a.versions }));
    const fresh = await localFixtureOn(f.dir);
    const response = await fresh.request('GET', '/v1/secret/app/b', { token: web });
    expect(await errorOf(response)).toMatchObject({ status: 503, code: 'integrity' });
    expect(response.headers.get('Retry-After')).not.toBeNull();
  });
});

describe('DELETE /v1/secret/{name}', () => {
  it('is for distinguished roles only', async () => {
    const web = await f.login('web');
    await put(web, 'gone', 's', ['web']);
    expect(await errorOf(await f.request('DELETE', '/v1/secret/gone', { token: web }))).toMatchObject({ status: 403 });
    const admin = await f.login('dssssadmin');
    const response = await f.request('DELETE', '/v1/secret/gone', { token: admin });
    expect(response.status).toBe(204);
    expect((await f.request('GET', '/v1/secret/gone', { token: web })).status).toBe(404);
    expect((await f.request('DELETE', '/v1/secret/gone', { token: admin })).status).toBe(404);
  });

  it('follows DSSSS_DISTINGUISHED_ROLES', async () => {
    f = await localFixture({ DSSSS_DISTINGUISHED_ROLES: 'ops, security' });
    await put(await f.login('web'), 'gone', 's', ['web']);
    expect((await f.request('DELETE', '/v1/secret/gone', { token: await f.login('dssssadmin') })).status).toBe(403);
    expect((await f.request('DELETE', '/v1/secret/gone', { token: await f.login('security') })).status).toBe(204);
  });
});

describe('writer roles', () => {
  it('limit who may create when configured', async () => {
    f = await localFixture({ DSSSS_WRITER_ROLES: 'deployer' });
    expect((await put(await f.login('web'), 'new', 's', ['web'])).status).toBe(403);
    expect((await put(await f.login('deployer'), 'new', 's', ['web'])).status).toBe(200);
    // Overwrite still follows the existing roles.
    expect((await put(await f.login('web'), 'new', 't', ['web'])).status).toBe(200);
  });

  it('refuse a caller who may not write before looking its roles up: no role-existence oracle, no IAM call', async () => {
    const roleId = vi.fn(async (_account: string, name: string) => (name === 'web' ? 'AROAWEB' : undefined));
    f = await localFixture({ DSSSS_WRITER_ROLES: 'deployer' }, { directory: { roleId } });
    const web = await f.login('web');
    expect(await errorOf(await put(web, 'new', 's', ['ghost']))).toMatchObject({ status: 403, code: 'forbidden' });
    expect(await errorOf(await put(web, 'new', 's', ['web']))).toMatchObject({ status: 403, code: 'forbidden' });
    expect(roleId).not.toHaveBeenCalled();
    // A writer learns of the missing role.
    expect(await errorOf(await put(await f.login('deployer'), 'new', 's', ['ghost']))).toMatchObject({ status: 400, code: 'unknown_role' });
  });
});

describe('GET /v1/secrets', () => {
  it('lists only the names the caller may read; every name for distinguished roles', async () => {
    const web = await f.login('web');
    const worker = await f.login('worker');
    await put(web, 'app/a', 's', ['web']);
    await put(worker, 'app/b', 's', ['worker']);
    await put(web, 'app/c', 's', ['web', 'worker']);
    await put(web, 'other/d', 's', ['web']);
    const list = async (token: string, query = '') => (await (await f.request('GET', `/v1/secrets${query}`, { token })).json()) as { names: string[]; next?: string };
    expect((await list(web)).names).toEqual(['app/a', 'app/c', 'other/d']);
    expect((await list(worker, '?prefix=app/')).names).toEqual(['app/b', 'app/c']);
    expect((await list(await f.login('dssssadmin'))).names).toEqual(['app/a', 'app/b', 'app/c', 'other/d']);
    expect((await list(await f.login('nobody'))).names).toEqual([]);
  });

  it('pages with limit and next', async () => {
    const web = await f.login('web');
    for (const n of ['a', 'b', 'c']) await put(web, n, 's', ['web']);
    const first = (await (await f.request('GET', '/v1/secrets?limit=2', { token: web })).json()) as { names: string[]; next: string };
    expect(first.names).toEqual(['a', 'b']);
    const second = (await (await f.request('GET', `/v1/secrets?limit=2&next=${first.next}`, { token: web })).json()) as { names: string[]; next?: string };
    expect(second).toEqual({ names: ['c'] });
  });

  it('refuses a bad limit, prefix or continuation with 400', async () => {
    const web = await f.login('web');
    for (const query of ['?limit=0', '?limit=101', '?limit=x', '?prefix=*', '?next=%21%21']) {
      expect((await f.request('GET', `/v1/secrets${query}`, { token: web })).status).toBe(400);
    }
  });

  it('requires authentication', async () => {
    expect((await f.request('GET', '/v1/secrets')).status).toBe(401);
  });
});

describe('the error model', () => {
  it('answers unknown routes with a JSON 404 and wrong methods with a JSON 405', async () => {
    expect(await errorOf(await f.request('GET', '/v2/nothing'))).toMatchObject({ status: 404, code: 'not_found' });
    const post = await f.request('POST', '/v1/secret/x');
    expect(await errorOf(post)).toMatchObject({ status: 405, code: 'method_not_allowed' });
    expect(post.headers.get('Allow')).toBe('GET, PUT, DELETE');
  });

  it.each(['/nope', '/v2/nothing', '/v1/nope', '/'])('answers %s with the security headers and an audit line, like every request', async (path) => {
    const before = f.audit.length;
    const response = await f.request('GET', path);
    expect(response.status).toBe(404);
    expect(response.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(response.headers.get('Cache-Control')).toBe('no-store');
    expect(response.headers.get('X-Request-Id')).toMatch(/./);
    expect(f.audit.slice(before)).toEqual([expect.objectContaining({ operation: 'unknown', status: 404, code: 'not_found' })]);
  });
});

async function localFixtureOn(dir: string) {
  const { createApp } = await import('../lambda/app');
  const { createRuntime } = await import('../lambda/runtime');
  const { loadConfig } = await import('../lambda/config');
  const app = createApp(await createRuntime(loadConfig({ DSSSS_DATA_DIR: dir })));
  return { request: (method: string, path: string, o: { token: string }) => app.request(path, { method, headers: { Reauthentication: o.token } }) };
}

describe('soft delete, restore, purge, history', () => {
  let f: Fixture;
  beforeAll(async () => {
    f = await localFixture();
  });

  it('keeps every version through a delete, restores the last live one as a new version, and purges for good', async () => {
    const [web, admin, other] = [await f.login('web'), await f.login('dssssadmin'), await f.login('other')];
    const put = (token: string, value: string, roles = ['web']) => f.request('PUT', '/v1/secret/soft/x', { token, body: { Secret: value, Roles: roles } });
    expect((await put(web, 'one')).status).toBe(200);
    expect((await put(web, 'two')).status).toBe(200);
    expect((await f.request('DELETE', '/v1/secret/soft/x', { token: web })).status).toBe(403);
    expect((await f.request('DELETE', '/v1/secret/soft/x', { token: admin })).status).toBe(204);

    // Absent to reads and listings; its last readers learn it was deleted, others see a plain 404.
    expect(await errorOf(await f.request('GET', '/v1/secret/soft/x', { token: web }))).toMatchObject({ status: 404, code: 'deleted' });
    expect(await errorOf(await f.request('GET', '/v1/secret/soft/x', { token: other }))).toMatchObject({ status: 404, code: 'not_found' });
    expect(await (await f.request('GET', '/v1/secrets?prefix=soft/', { token: web })).json()).toEqual({ names: [] });
    expect(await (await f.request('GET', '/v1/secrets?prefix=soft/&deleted=true', { token: admin })).json()).toEqual({ names: ['soft/x'] });
    expect((await f.request('GET', '/v1/secrets?prefix=soft/&deleted=true', { token: web })).status).toBe(403);
    // Writing it again is refused until it is restored or purged: no one inherits the old history by accident.
    expect(await errorOf(await put(web, 'three'))).toMatchObject({ status: 409, code: 'conflict' });
    expect((await put(other, 'squat', ['other'])).status).toBe(403);

    const history = (await (await f.request('GET', '/v1/secret/soft/x/versions', { token: web })).json()) as { versions: { version: number; operation: string; deleted: boolean; by: { role: string } }[] };
    expect(history.versions.map((v) => [v.version, v.operation, v.by.role])).toEqual([[3, 'delete', 'dssssadmin'], [2, 'put', 'web'], [1, 'put', 'web']]);
    expect(JSON.stringify(history)).not.toMatch(/one|two/);

    expect((await f.request('POST', '/v1/secret/soft/x/restore', { token: web })).status).toBe(403);
    expect(await (await f.request('POST', '/v1/secret/soft/x/restore', { token: admin })).json()).toEqual({ name: 'soft/x', version: 4, restoredFrom: 2 });
    expect(await (await f.request('GET', '/v1/secret/soft/x', { token: web })).json()).toEqual({ name: 'soft/x', secret: 'two', version: 4, roles: ['web'] });
    // Every version written before the delete reads back.
    expect(await (await f.request('GET', '/v1/secret/soft/x?version=1', { token: web })).json()).toMatchObject({ secret: 'one', version: 1 });
    expect((await f.request('POST', '/v1/secret/soft/x/restore', { token: admin })).status).toBe(409);

    expect((await f.request('DELETE', '/v1/secret/soft/x?purge=true', { token: web })).status).toBe(403);
    expect((await f.request('DELETE', '/v1/secret/soft/x?purge=true', { token: admin })).status).toBe(204);
    expect((await f.request('GET', '/v1/secret/soft/x/versions', { token: admin })).status).toBe(404);
    expect((await put(web, 'fresh')).status).toBe(200);
    expect(await (await f.request('GET', '/v1/secret/soft/x', { token: web })).json()).toMatchObject({ secret: 'fresh', version: 1 });
  });

  it('reads every readable secret under a prefix in one request (bulk read)', async () => {
    const [web, admin] = [await f.login('web'), await f.login('dssssadmin')];
    await f.request('PUT', '/v1/secret/bulk/a', { token: web, body: { Secret: 'A', Roles: ['web'] } });
    await f.request('PUT', '/v1/secret/bulk/b', { token: admin, body: { Secret: 'B', Roles: ['dssssadmin'] } });
    const page = await (await f.request('GET', '/v1/secrets?prefix=bulk/&values=true', { token: web })).json();
    expect(page).toEqual({ names: ['bulk/a'], secrets: [{ name: 'bulk/a', secret: 'A', version: 1, roles: ['web'] }] });
    // An admin lists every name but reads only what names it.
    expect(await (await f.request('GET', '/v1/secrets?prefix=bulk/&values=true', { token: admin })).json()).toEqual({
      names: ['bulk/a', 'bulk/b'],
      secrets: [{ name: 'bulk/b', secret: 'B', version: 1, roles: ['dssssadmin'] }],
    });
    expect((await f.request('GET', '/v1/secrets?prefix=bulk/&values=yes', { token: web })).status).toBe(400);
  });

  it('rotates the seal key: new writes use it, old versions and old tokens still work, rewrap moves every secret, retire waits', async () => {
    const [web, admin] = [await f.login('web'), await f.login('dssssadmin')];
    await f.request('PUT', '/v1/secret/rot/a', { token: web, body: { Secret: 'a1', Roles: ['web'] } });
    await f.request('PUT', '/v1/secret/rot/a', { token: web, body: { Secret: 'a2', Roles: ['web'] } });
    expect((await f.request('POST', '/v1/admin/seal-keys', { token: web })).status).toBe(403);
    const rotated = await f.request('POST', '/v1/admin/seal-keys', { token: admin });
    expect(rotated.status).toBe(201);
    const { id: newId } = (await rotated.json()) as { id: string };
    const ring = (await (await f.request('GET', '/v1/admin/seal-keys', { token: admin })).json()) as { keys: { id: string; current: boolean }[] };
    expect(ring.keys).toHaveLength(2);
    const oldId = ring.keys.find((k) => !k.current)!.id;
    // The token issued before the rotation still works.
    expect((await f.request('GET', '/v1/secret/rot/a?version=1', { token: web })).status).toBe(200);
    // Not retirable while records use it, nor within 65 minutes.
    expect((await f.request('DELETE', `/v1/admin/seal-keys/${oldId}`, { token: admin })).status).toBe(409);
    let next: string | undefined;
    let rewrapped = 0;
    do {
      const page = (await (await f.request('POST', `/v1/admin/rewrap${next ? `?next=${next}` : ''}`, { token: admin })).json()) as { rewrapped: number; next?: string };
      rewrapped += page.rewrapped;
      next = page.next;
    } while (next);
    expect(rewrapped).toBeGreaterThan(0);
    // Idempotent: a second run has nothing to do.
    expect(await (await f.request('POST', '/v1/admin/rewrap', { token: admin })).json()).toMatchObject({ rewrapped: 0 });
    expect(await (await f.request('GET', '/v1/secret/rot/a', { token: web })).json()).toEqual({ name: 'rot/a', secret: 'a2', version: 2, roles: ['web'] });
    expect(await (await f.request('GET', '/v1/secret/rot/a?version=1', { token: web })).json()).toMatchObject({ secret: 'a1', version: 1 });
    const history = (await (await f.request('GET', '/v1/secret/rot/a/versions', { token: web })).json()) as { versions: unknown[] };
    expect(history.versions).toHaveLength(2);
    expect((await f.request('DELETE', `/v1/admin/seal-keys/${oldId}`, { token: admin })).status).toBe(409); // too soon
    f.clock.time += 66 * 60_000;
    const fresh = await f.login('web');
    const freshAdmin = await f.login('dssssadmin');
    expect((await f.request('DELETE', `/v1/admin/seal-keys/${newId}`, { token: freshAdmin })).status).toBe(409); // the newest
    expect((await f.request('DELETE', `/v1/admin/seal-keys/${oldId}`, { token: freshAdmin })).status).toBe(204);
    expect(await (await f.request('GET', '/v1/secret/rot/a?version=1', { token: fresh })).json()).toMatchObject({ secret: 'a1' });
  });
});

describe('rewrap, interrupted', () => {
  it('started again after its first page, re-seals each name exactly once, changes no version, and frees the old key', async () => {
    const [web, admin] = [await f.login('web'), await f.login('dssssadmin')];
    const names = Array.from({ length: 23 }, (_, i) => `wrap/n${String(i).padStart(2, '0')}`);
    for (const name of names) {
      await put(web, name, `${name}-1`, ['web']);
      await put(web, name, `${name}-2`, ['web']);
    }
    expect((await f.request('POST', '/v1/admin/seal-keys', { token: admin })).status).toBe(201);
    const rewrap = async (next?: string) =>
      (await (await f.request('POST', `/v1/admin/rewrap${next ? `?next=${encodeURIComponent(next)}` : ''}`, { token: admin })).json()) as { rewrapped: number; unchanged: number; next?: string };
    // The run that was cut off: one page, then nothing.
    const first = await rewrap();
    expect(first.rewrapped).toBeGreaterThan(0);
    expect(first.next).toBeDefined();
    // The run again, from the start, to the end.
    let total = { rewrapped: first.rewrapped, unchanged: 0 };
    let next: string | undefined;
    do {
      const page = await rewrap(next);
      total = { rewrapped: total.rewrapped + page.rewrapped, unchanged: total.unchanged + page.unchanged };
      next = page.next;
    } while (next);
    expect(total).toEqual({ rewrapped: names.length, unchanged: first.rewrapped });
    for (const name of names) {
      expect(await (await f.request('GET', `/v1/secret/${name}`, { token: web })).json()).toMatchObject({ secret: `${name}-2`, version: 2 });
      expect(await (await f.request('GET', `/v1/secret/${name}?version=1`, { token: web })).json()).toMatchObject({ secret: `${name}-1`, version: 1 });
    }
    const ring = (await (await f.request('GET', '/v1/admin/seal-keys', { token: admin })).json()) as { keys: { id: string; current: boolean }[] };
    f.clock.time += 66 * 60_000;
    const oldId = ring.keys.find((k) => !k.current)!.id;
    expect((await f.request('DELETE', `/v1/admin/seal-keys/${oldId}`, { token: await f.login('dssssadmin') })).status).toBe(204);
  });
});

describe('admin backup and restore-backup', () => {
  type Secret = { name: string; records: { seq: number; record: string }[]; head: { kid: string; mac: string } };
  type Page = { sealKeys: Record<string, string>; secrets: Secret[]; next?: string };
  async function backupAll(token: string): Promise<Page> {
    const all: Page = { sealKeys: {}, secrets: [] };
    let next: string | undefined;
    do {
      const response = await f.request('GET', `/v1/admin/backup${next ? `?next=${encodeURIComponent(next)}` : ''}`, { token });
      expect(response.status).toBe(200);
      const page = (await response.json()) as Page;
      Object.assign(all.sealKeys, page.sealKeys);
      all.secrets.push(...page.secrets);
      next = page.next;
    } while (next);
    return all;
  }
  const restore = (token: string, backup: Page, name: string) =>
    f.request('POST', '/v1/admin/restore-backup', { token, body: { sealKeys: backup.sealKeys, ...backup.secrets.find((s) => s.name === name)! } });
  const versionsOf = async (token: string, name: string) =>
    ((await (await f.request('GET', `/v1/secret/${name}/versions`, { token })).json()) as { versions: unknown[] }).versions;

  it('brings purged secrets back with every version, writer and time, under a rotated key; again: nothing doubled', async () => {
    const [web, admin] = [await f.login('web'), await f.login('dssssadmin')];
    for (let i = 1; i <= 7; i++) await put(web, 'bk/many', `m${i}`, ['web']);
    await put(web, 'bk/gone', 'g1', ['web']);
    await f.request('DELETE', '/v1/secret/bk/gone', { token: admin });
    // Records under two seal keys: the backup carries both.
    await f.request('POST', '/v1/admin/seal-keys', { token: admin });
    await put(web, 'bk/many', 'm8', ['web']);
    const before = { many: await versionsOf(web, 'bk/many'), gone: await versionsOf(admin, 'bk/gone') };
    expect((await f.request('GET', '/v1/admin/backup', { token: web })).status).toBe(403);
    const backup = await backupAll(admin);
    expect(Object.keys(backup.sealKeys)).toEqual(['seal-key', 'seal-key-2']);
    expect(JSON.stringify(backup)).not.toMatch(/m[1-8]"|g1"/);

    for (const name of ['bk/many', 'bk/gone']) expect((await f.request('DELETE', `/v1/secret/${name}?purge=true`, { token: admin })).status).toBe(204);
    expect((await restore(web, backup, 'bk/many')).status).toBe(403);
    // Five versions per call: the first call leaves three, as an interrupted restore would.
    expect(await (await restore(admin, backup, 'bk/many')).json()).toEqual({ status: 'restored', written: 5, remaining: 3, version: 5 });
    expect(await (await restore(admin, backup, 'bk/many')).json()).toEqual({ status: 'restored', written: 3, remaining: 0, version: 8 });
    expect(await (await restore(admin, backup, 'bk/many')).json()).toEqual({ status: 'unchanged', written: 0, remaining: 0, version: 8 });
    expect(await (await restore(admin, backup, 'bk/gone')).json()).toMatchObject({ status: 'restored', remaining: 0, version: 2 });

    expect(await versionsOf(web, 'bk/many')).toEqual(before.many);
    expect(await versionsOf(admin, 'bk/gone')).toEqual(before.gone);
    for (let i = 1; i <= 8; i++) {
      expect(await (await f.request('GET', `/v1/secret/bk/many?version=${i}`, { token: web })).json()).toMatchObject({ secret: `m${i}`, version: i });
    }
    expect((await errorOf(await f.request('GET', '/v1/secret/bk/gone', { token: web }))).code).toBe('deleted');
    expect(await (await f.request('POST', '/v1/secret/bk/gone/restore', { token: admin })).json()).toMatchObject({ version: 3 });
    expect(await (await f.request('GET', '/v1/secret/bk/gone', { token: web })).json()).toMatchObject({ secret: 'g1', version: 3 });
  });

  it('never overwrites a newer version, nor a history that went another way', async () => {
    const [web, admin] = [await f.login('web'), await f.login('dssssadmin')];
    await put(web, 'bk/live', 'v1', ['web']);
    const backup = await backupAll(admin);
    await put(web, 'bk/live', 'v2', ['web']);
    expect(await (await restore(admin, backup, 'bk/live')).json()).toEqual({ status: 'unchanged', written: 0, remaining: 0, version: 2 });
    await f.request('DELETE', '/v1/secret/bk/live?purge=true', { token: admin });
    await put(web, 'bk/live', 'other', ['web']);
    expect(await (await restore(admin, backup, 'bk/live')).json()).toEqual({ status: 'conflict', written: 0, remaining: 0, version: 1 });
    expect(await (await f.request('GET', '/v1/secret/bk/live', { token: web })).json()).toMatchObject({ secret: 'other', version: 1 });
  });

  it('refuses records it cannot open, and bodies of the wrong shape, with 4xx', async () => {
    const admin = await f.login('dssssadmin');
    await put(await f.login('web'), 'bk/x', 'x', ['web']);
    const backup = await backupAll(admin);
    const { records, head } = backup.secrets.find((s) => s.name === 'bk/x')!;
    const tampered = records.map((r) => ({ ...r, record: `${r.record.slice(0, -8)}AAAAAAAA` }));
    const send = (body: unknown) => f.request('POST', '/v1/admin/restore-backup', { token: admin, body });
    // Another name for the same records: they are bound to their name.
    expect(await errorOf(await send({ sealKeys: backup.sealKeys, name: 'bk/y', records, head }))).toMatchObject({ status: 400, message: expect.stringMatching(/not whole as it was taken/) });
    expect((await send({ sealKeys: backup.sealKeys, name: 'bk/x', records: tampered, head })).status).toBe(400);
    expect((await f.request('GET', '/v1/secret/bk/y', { token: admin })).status).toBe(404);
    for (const body of [
      {},
      { sealKeys: {}, name: 'bk/y', records, head },
      { sealKeys: { other: 'x' }, name: 'bk/y', records, head },
      { sealKeys: backup.sealKeys, name: '../y', records, head },
      { sealKeys: backup.sealKeys, name: 'bk/y', records: [], head },
      { sealKeys: backup.sealKeys, name: 'bk/x', records },
    ]) {
      expect((await send(body)).status, JSON.stringify(body).slice(0, 60)).toBe(400);
    }
  });
});

describe('admin restore-backup, abused', () => {
  it('will not make an older version the newest by leaving later records out of a backup (an admin reading what it was removed from)', async () => {
    const [web, admin] = [await f.login('web'), await f.login('dssssadmin')];
    await put(web, 'bk/pw', 'old-password', ['web', 'dssssadmin']);
    await put(web, 'bk/pw', 'new-password', ['web']);
    expect((await f.request('GET', '/v1/secret/bk/pw?version=1', { token: admin })).status).toBe(404);
    const backup = (await (await f.request('GET', '/v1/admin/backup', { token: admin })).json()) as {
      sealKeys: Record<string, string>;
      secrets: { name: string; records: { seq: number; record: string }[]; head: { kid: string; mac: string } }[];
    };
    const secret = backup.secrets.find((s) => s.name === 'bk/pw')!;
    expect((await f.request('DELETE', '/v1/secret/bk/pw?purge=true', { token: admin })).status).toBe(204);
    const cut = await f.request('POST', '/v1/admin/restore-backup', { token: admin, body: { sealKeys: backup.sealKeys, ...secret, records: secret.records.slice(0, 1) } });
    expect(await errorOf(cut)).toMatchObject({ status: 400, message: expect.stringMatching(/not whole as it was taken/) });
    expect((await f.request('GET', '/v1/secret/bk/pw', { token: admin })).status).toBe(404);
    // The whole backup restores, and its newest roles govern: still not the admin's to read.
    const whole = await f.request('POST', '/v1/admin/restore-backup', { token: admin, body: { sealKeys: backup.sealKeys, ...secret } });
    expect(await whole.json()).toMatchObject({ status: 'restored', version: 2 });
    expect((await f.request('GET', '/v1/secret/bk/pw?version=1', { token: admin })).status).toBe(404);
    expect(await (await f.request('GET', '/v1/secret/bk/pw', { token: web })).json()).toMatchObject({ secret: 'new-password', version: 2 });
  });
});

describe('change events', () => {
  it('publishes one event per change with no secret material, and a failed publish never fails the write', async () => {
    const published: unknown[] = [];
    let fail = false;
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const f = await localFixture({}, { events: { publish: async (events) => { if (fail) throw new Error('bus down'); published.push(...events); } } });
    const [web, admin] = [await f.login('web'), await f.login('dssssadmin')];
    expect((await f.request('PUT', '/v1/secret/ev/a', { token: web, body: { Secret: 'canary-value', Roles: ['web'] } })).status).toBe(200);
    expect((await f.request('DELETE', '/v1/secret/ev/a', { token: admin })).status).toBe(204);
    expect(published).toMatchObject([
      { operation: 'put', name: 'ev/a', version: 1, actor: { role: 'web', account: ACCOUNT } },
      { operation: 'delete', name: 'ev/a', version: 2, actor: { role: 'dssssadmin' } },
    ]);
    expect(JSON.stringify(published)).not.toMatch(/canary-value|dssss\.v2\./);
    fail = true;
    expect((await f.request('POST', '/v1/secret/ev/a/restore', { token: admin })).status).toBe(200);
    expect(await (await f.request('GET', '/v1/secret/ev/a', { token: web })).json()).toMatchObject({ secret: 'canary-value', version: 3 });
    expect(errors.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringContaining('change event not published'));
    errors.mockRestore();
  });
});
