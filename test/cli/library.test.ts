// The client library (cli/index.ts, what `import { DssssClient } from 'dssss'` gives) against
// a local dssss over loopback HTTP, with EC2 instances (IMDSv2) and STS played by the shared
// AWS stand-in (test/cli/harness.ts): reads, writes, the value cache, errors and their codes,
// retries, logins, and many clients in one process, each with its own environment. (The
// packed library, imported as a user would, is `npm run test:dist`.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DssssClient, DssssClientError, MemoryTokenStore, type DssssClientOptions, type Secret } from '../../cli/index';
import { EXIT, exitCodeFor } from '../../cli/errors';
import type { Fixture } from '../helpers';
import type { FakeAws } from '../support/fake-aws';
import { OTHER_ACCOUNT, startHarness, type Harness } from './harness';

let h: Harness;
let f: Fixture;
let url: string;
let fake: FakeAws;
/** Every request a client sent, as the server saw its method, path and headers. */
const seen: { method: string; path: string; headers: Headers }[] = [];

beforeAll(async () => {
  h = await startHarness();
  ({ f, url, fake } = h);
});

afterAll(() => h.close());

/** A fetch that records what it sends. */
const recording: typeof fetch = (input, init) => {
  const u = new URL(String(input));
  seen.push({ method: init?.method ?? 'GET', path: `${u.pathname}${u.search}`, headers: new Headers(init?.headers) });
  return fetch(input, init);
};

/** A client whose environment is its own: IMDS (the last instance launched) and STS on the stand-in, no retries. */
function client(options: Partial<DssssClientOptions> = {}, env: Record<string, string> = {}): DssssClient {
  return new DssssClient({
    url,
    env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: h.aws.imdsUrl(h.instance.instanceId), AWS_ENDPOINT_URL_STS: h.aws.url, DSSSS_RETRY_FOR: '0', ...env },
    fetch: recording,
    ...options,
  });
}

/** A client logged in with a fresh fake instance of `role` (its identity document). */
async function as(role: string, options: Partial<DssssClientOptions> = {}): Promise<DssssClient> {
  return client({ document: await f.identity(role), ...options });
}

async function codeOf(promise: Promise<unknown>): Promise<[string, number | undefined]> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(DssssClientError);
    return [(err as DssssClientError).code, (err as DssssClientError).status];
  }
  throw new Error('expected a DssssClientError');
}

describe('DssssClient: reading and writing', () => {
  it('puts, gets (latest and by version), lists with metadata, and shows history', async () => {
    const web = await as('web');
    expect(await web.put('lib/db', 'first', { roles: ['web'] })).toEqual({ name: 'lib/db', version: 1 });
    await web.put('lib/db', 'second', { roles: ['web', 'worker'] });
    expect(await web.get('lib/db')).toEqual({ name: 'lib/db', value: 'second', version: 2, roles: ['web', 'worker'] });
    expect((await web.get('lib/db', { version: 1 })).value).toBe('first');
    const [entry] = await web.list('lib');
    expect(entry).toMatchObject({ name: 'lib/db', version: 2, roles: ['web', 'worker'], by: { role: 'web' } });
    expect((await web.history('lib/db')).map((v) => [v.version, v.operation])).toEqual([
      [2, 'put'],
      [1, 'put'],
    ]);
  });

  it('getAll reads every secret under a prefix (whole segments) with one bulk read a page, following next', async () => {
    const web = await as('web');
    for (const name of ['bulk/a', 'bulk/b', 'bulk/c']) await web.put(name, `value of ${name}`, { roles: ['web'] });
    await web.put('bulkier/x', 'not under bulk/', { roles: ['web'] });
    // Pages of one name, so the client must follow `next`.
    const paged = await as('web', { fetch: (input, init) => recording(String(input).includes('/v1/secrets?') ? `${String(input)}&limit=1` : input, init) });
    const from = seen.length;
    const all = await paged.getAll('bulk');
    expect([...all.keys()]).toEqual(['bulk/a', 'bulk/b', 'bulk/c']);
    expect(all.get('bulk/b')?.value).toBe('value of bulk/b');
    const reads = seen.slice(from).filter((r) => r.path.startsWith('/v1/secrets?'));
    expect(reads.length).toBeGreaterThanOrEqual(3);
    expect(reads.every((r) => r.path.includes('values=true') && r.path.includes('prefix=bulk%2F'))).toBe(true);
  });

  it('deletes (soft), restores and purges as a distinguished role', async () => {
    const web = await as('web');
    await web.put('lib/gone', 'x', { roles: ['web'] });
    const admin = await as('dssssadmin');
    await admin.delete('lib/gone');
    expect(await codeOf(web.get('lib/gone', { forceFetch: true }))).toEqual(['deleted', 404]);
    expect(await admin.restore('lib/gone')).toMatchObject({ name: 'lib/gone', version: 3, restoredFrom: 1 });
    expect((await web.get('lib/gone', { forceFetch: true })).value).toBe('x');
    await admin.delete('lib/gone', { purge: true });
    expect(await codeOf(web.get('lib/gone', { forceFetch: true }))).toEqual(['not_found', 404]);
  });
});

describe('DssssClient: the value cache', () => {
  it('answers a repeated get from memory within the TTL, and forceFetch goes to the server with Cache-Control: no-cache', async () => {
    const web = await as('web');
    await web.put('cache/a', 'one', { roles: ['web'] });
    const from = seen.length;
    await web.get('cache/a');
    await web.get('cache/a');
    await web.getAll('cache');
    await web.getAll('cache');
    const sent = seen.slice(from);
    expect(sent.filter((r) => r.path === '/v1/secret/cache/a')).toHaveLength(1);
    expect(sent.filter((r) => r.path.startsWith('/v1/secrets?'))).toHaveLength(1);
    expect(sent.every((r) => r.headers.get('cache-control') === null)).toBe(true);

    await web.get('cache/a', { forceFetch: true });
    const forced = seen.at(-1)!;
    expect(forced.path).toBe('/v1/secret/cache/a');
    expect(forced.headers.get('cache-control')).toBe('no-cache');
  });

  it('forgets a name this client writes; a value written elsewhere shows once the TTL has passed', async () => {
    const web = await as('web', { cacheTtlMs: 200 });
    const other = await as('web');
    await web.put('cache/b', 'one', { roles: ['web'] });
    expect((await web.get('cache/b')).value).toBe('one');
    await web.put('cache/b', 'two', { roles: ['web'] });
    expect((await web.get('cache/b')).value).toBe('two');
    await other.put('cache/b', 'three', { roles: ['web'] });
    expect((await web.get('cache/b')).value).toBe('two');
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await web.get('cache/b')).value).toBe('three');
    const off = await as('web', { cacheTtlMs: 0 });
    const from = seen.length;
    await off.get('cache/b');
    await off.get('cache/b');
    expect(seen.slice(from).filter((r) => r.path === '/v1/secret/cache/b')).toHaveLength(2);
  });
  it('hands every caller its own copy: mutating what getAll, get or watch returned changes nothing the client returns next', async () => {
    const web = await as('web', { cacheTtlMs: 60_000 });
    await web.put('copy/a', 'one', { roles: ['web'] });
    const first = (await web.getAll('copy')) as Map<string, Secret>;
    first.delete('copy/a');
    first.set('copy/planted', { name: 'copy/planted', value: 'planted', version: 1, roles: ['web'] });
    const again = await web.getAll('copy');
    expect([...again.keys()]).toEqual(['copy/a']);
    expect(again).not.toBe(first);
    expect(again.get('copy/a')?.value).toBe('one');
    // The secrets themselves, as get answers them, are frozen.
    const secret = await web.get('copy/a');
    expect(Object.isFrozen(secret) && Object.isFrozen(secret.roles)).toBe(true);
    expect(() => ((secret as { value: string }).value = 'changed')).toThrow(TypeError);
    expect((await web.get('copy/a')).value).toBe('one');
    // What watch hands onChange is cached for getAll too: changing it changes nothing there.
    const controller = new AbortController();
    let seenOnce = false;
    const watching = web.watch('copy', {
      intervalMs: 20,
      signal: controller.signal,
      initial: new Map(),
      onChange: (secrets) => {
        (secrets as Map<string, Secret>).clear();
        seenOnce = true;
        controller.abort();
      },
    });
    await watching;
    expect(seenOnce).toBe(true);
    expect([...(await web.getAll('copy')).keys()]).toEqual(['copy/a']);
  });
});

describe('DssssClient: errors', () => {
  it('carries the server code and status, and the client codes for what never reached a server', async () => {
    const web = await as('web');
    await web.put('err/web-only', 'x', { roles: ['web'] });
    const billing = await as('billing');
    expect(await codeOf(billing.get('err/web-only'))).toEqual(['not_found', 404]);
    expect(await codeOf(billing.delete('err/web-only'))).toEqual(['forbidden', 403]);
    expect(await codeOf(web.get('a/../b'))).toEqual(['invalid_name', undefined]);
    expect(await codeOf(web.put('err/x', 'v', { roles: [] }))).toEqual(['invalid_argument', undefined]);
    expect(() => new DssssClient({ url: 'http://dssss.example.com', env: {} })).toThrow(expect.objectContaining({ code: 'invalid_argument' }));
    expect(() => new DssssClient({ env: {} })).toThrow(/no server/);
    const down = new DssssClient({ url: 'http://127.0.0.1:9', env: { AWS_EC2_METADATA_DISABLED: 'true' }, document: 'x', retryForMs: 0 });
    expect(await codeOf(down.get('err/x'))).toEqual(['unreachable', undefined]);
  });

  it('never puts a value, token or document in an error message', async () => {
    const document = await f.identity('web');
    const web = client({ document });
    await web.put('err/secret', 'hunter2-value', { roles: ['web'] });
    const billing = await as('billing');
    const messages: string[] = [];
    for (const attempt of [billing.get('err/secret'), billing.getAll('err'), billing.put('err/secret', 'hunter2-value', { roles: ['billing'] })]) {
      await attempt.then(
        () => undefined,
        (err: Error) => messages.push(err.message),
      );
    }
    for (const message of messages) {
      expect(message).not.toContain('hunter2');
      expect(message).not.toContain(document.slice(0, 40));
    }
  });
});

describe('DssssClient: retries', () => {
  it('waits out 429s no sooner than Retry-After within its budget, then answers; past the budget it reports the last answer', async () => {
    const web = await as('web');
    await web.put('retry/x', 'eventually', { roles: ['web'] });
    const waits: number[] = [];
    let now = 0;
    // A clock that moves only when the client waits: no test waits in real time.
    const timing = { sleep: async (ms: number) => void (waits.push(ms), (now += ms)), now: () => now, random: () => 0 };
    let throttled = 3;
    const throttling: typeof fetch = async (input, init) => {
      if (String(input).includes('/v1/secret/retry/x') && throttled-- > 0) {
        return new Response('{"error":{"code":"rate_limited","message":"slow down"}}', { status: 429, headers: { 'Retry-After': '2' } });
      }
      return fetch(input, init);
    };
    const patient = client({ document: await f.identity('web'), fetch: throttling, retryForMs: 60_000, timing });
    expect((await patient.get('retry/x')).value).toBe('eventually');
    expect(waits).toEqual([2000, 2000, 2000]);
    throttled = 100;
    waits.length = 0;
    const hasty = client({ document: await f.identity('web'), fetch: throttling, retryForMs: 3000, timing });
    expect(await codeOf(hasty.get('retry/x'))).toEqual(['rate_limited', 429]);
    expect(waits).toEqual([2000]); // a second wait of 2 s would overrun the 3 s budget
  });
});

describe('DssssClient: answers no retry mends', () => {
  it.each(['misconfigured', 'integrity'])('reports a 503 %s at once, however long its budget and however soon Retry-After says', async (code) => {
    const web = await as('web');
    await web.put('final/x', 'v', { roles: ['web'] });
    const waits: number[] = [];
    const timing = { sleep: async (ms: number) => void waits.push(ms), now: () => 0, random: () => 0 };
    let asked = 0;
    const broken: typeof fetch = async (input, init) => {
      if (!String(input).includes('/v1/secret/final/x')) return fetch(input, init);
      asked++;
      return new Response(`{"error":{"code":"${code}","message":"the server cannot use KMS"}}`, { status: 503, headers: { 'Retry-After': '1' } });
    };
    const patient = client({ document: await f.identity('web'), fetch: broken, retryForMs: 600_000, timing });
    expect(await codeOf(patient.get('final/x'))).toEqual([code, 503]);
    expect(asked).toBe(1);
    expect(waits).toEqual([]);
    expect(exitCodeFor(code as 'misconfigured')).toBe(EXIT.error);
  });
});

describe('DssssClient: logging in', () => {
  const TOKEN = 'PUT /latest/api/token';
  const DOCUMENT = 'GET /latest/dynamic/instance-identity/rsa2048';

  it('on EC2 with a role: IAM with the instance role credentials; one login shared by concurrent calls', async () => {
    await (await as('web')).put('role/x', 'v', { roles: ['web'] });
    const instance = await h.launch('web', { instanceRole: true });
    const onEc2 = client({}, { DSSSS_NONCE_FILE: '' });
    const from = { sts: fake.stsKeys.length, seen: seen.length };
    const names = await Promise.all([onEc2.list('role'), onEc2.list('role'), onEc2.list('lib')]);
    expect(names[0]!.length).toBeGreaterThan(0);
    // Signed with the role's credentials from IMDS: STS checks the signature the server forwards.
    expect(fake.stsKeys.slice(from.sts)).toEqual([instance.credentials.accessKeyId]);
    expect(seen.slice(from.seen).filter((r) => r.path.startsWith('/v1/auth'))).toHaveLength(1);
    expect((await onEc2.login()).method).toBe('iam');
  });

  it('on EC2 without a role whose IMDS missed the first probe: falls back to the identity document', async () => {
    const instance = await h.launch('web');
    fake.imds.fault(instance.instanceId, { kind: 'error', status: 500, count: 1 }); // the probe gets a 500: not taken for an instance, at first
    const slow = await client({}, { HOME: '/nonexistent-dssss-home' }).login();
    expect(slow).toMatchObject({ role: 'web', method: 'ec2' });
    // The failed probe; the role's name (none: 404); the document.
    expect(fake.imds.requestLog(instance.instanceId)).toEqual([TOKEN, TOKEN, 'GET /latest/meta-data/iam/security-credentials/', TOKEN, DOCUMENT]);
  });

  it('retries an IMDS request that times out, within its budget, as it does a 5xx', async () => {
    const instance = await h.launch('web');
    // The first token request answers only after the client's limit for one try (1 s, cli/imds.ts).
    fake.imds.fault(instance.instanceId, { kind: 'slow', delayMs: 2500, count: 1 });
    const waits: number[] = [];
    const patient = client({ method: 'ec2', retryForMs: 60_000, timing: { sleep: async (ms) => void waits.push(ms) } });
    const started = performance.now();
    expect(await patient.login()).toMatchObject({ role: 'web', method: 'ec2' });
    expect(performance.now() - started).toBeLessThan(2500); // it gave up on the slow answer and asked again
    expect(waits).toHaveLength(1);
    expect(fake.imds.requestLog(instance.instanceId)).toEqual([TOKEN, TOKEN, DOCUMENT]);
  });

  it('uses the credentials it is given, and its own environment, never process.env', async () => {
    // Sessions STS knows, of a role in another allowed account: each login's signature is checked.
    const session = (name: string) => {
      const { accessKeyId, secretAccessKey, sessionToken } = fake.assumeRole('worker', name, OTHER_ACCOUNT);
      return { accessKeyId, secretAccessKey, sessionToken: sessionToken! };
    };
    const keys = session('given');
    const given = client({ credentials: async () => keys }, { AWS_EC2_METADATA_DISABLED: 'true' });
    expect(await given.login()).toMatchObject({ role: '123456789012:worker', method: 'iam' });
    expect(fake.stsKeys.at(-1)).toBe(keys.accessKeyId);
    const envKeys = session('from-env');
    const fromEnv = client({}, { AWS_ACCESS_KEY_ID: envKeys.accessKeyId, AWS_SECRET_ACCESS_KEY: envKeys.secretAccessKey, AWS_SESSION_TOKEN: envKeys.sessionToken, AWS_EC2_METADATA_DISABLED: 'true' });
    expect(await fromEnv.login()).toMatchObject({ role: '123456789012:worker', method: 'iam' });
    expect(fake.stsKeys.at(-1)).toBe(envKeys.accessKeyId);
    // Keys in process.env are not the client's: its own environment has none, so it has nothing to sign with.
    const processKeys = session('process-env');
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: processKeys.accessKeyId, AWS_SECRET_ACCESS_KEY: processKeys.secretAccessKey, AWS_SESSION_TOKEN: processKeys.sessionToken });
    try {
      const bare = client({}, { AWS_EC2_METADATA_DISABLED: 'true', HOME: '/nonexistent-dssss-home' });
      expect(await codeOf(bare.login())).toEqual(['no_credentials', undefined]);
    } finally {
      process.env = saved;
    }
    expect(fake.stsKeys).not.toContain(processKeys.accessKeyId);
  });

  it('keeps a token per identity in a shared store: a client given another document logs in as that one', async () => {
    const shared = new MemoryTokenStore();
    const web = await as('web', { tokenStore: shared });
    await web.put('web/shared-store', 'web only', { roles: ['web'] });
    const billing = await as('billing', { tokenStore: shared });
    expect(await codeOf(billing.get('web/shared-store'))).toEqual(['not_found', 404]);
    expect((await billing.whoami()).role).toBe('billing');
    expect((await web.get('web/shared-store', { forceFetch: true })).value).toBe('web only');
  });

  it('runs many clients in one process, each with its own IMDS endpoint (with a path), role and tokens', async () => {
    // The stand-in mounts each instance's IMDS at <url>/<instance id>.
    const instances = [await h.launch('web'), await h.launch('billing')];
    const clients = instances.map((i) => client({ tokenStore: new MemoryTokenStore() }, { AWS_EC2_METADATA_SERVICE_ENDPOINT: h.aws.imdsUrl(i.instanceId) }));
    const logins = await Promise.all(clients.map((c) => c.login()));
    expect(logins.map((l) => l.role)).toEqual(['web', 'billing']);
    expect(instances.map((i) => fake.imds.requestLog(i.instanceId).includes(DOCUMENT))).toEqual([true, true]);
  });
});

describe('DssssClient.watch', () => {
  it('calls onChange first with what it read, then on each change, and ends when its signal aborts', async () => {
    const web = await as('web');
    await web.put('watch/a', 'one', { roles: ['web'] });
    const changes: ReadonlyMap<string, Secret>[] = [];
    const errors: string[] = [];
    const controller = new AbortController();
    const watching = web.watch('watch', { intervalMs: 50, signal: controller.signal, onChange: (s) => void changes.push(s), onError: (e) => errors.push(e.code) });
    const until = async (check: () => boolean) => {
      for (let i = 0; i < 300 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(check()).toBe(true);
    };
    await until(() => changes.length === 1);
    expect(changes[0]!.get('watch/a')?.value).toBe('one');
    await web.put('watch/a', 'two', { roles: ['web'] });
    await until(() => changes.length === 2);
    expect(changes[1]!.get('watch/a')?.value).toBe('two');
    controller.abort();
    await watching;
    expect(errors).toEqual([]);
    await expect(web.watch('watch', { intervalMs: 0, onChange: () => undefined })).rejects.toMatchObject({ code: 'invalid_argument' });
  });

  it('ends when its signal aborts even while a re-read hangs (the request is abandoned, not awaited)', async () => {
    let reads = 0;
    const hanging: typeof fetch = (input, init) => {
      if (String(input).includes('/v1/secrets?') && ++reads > 1) {
        // Never answers: only the abort (or the 30 s request timeout) ends it.
        return new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
      }
      return recording(input, init);
    };
    const web = await as('web', { fetch: hanging, retryForMs: 60_000 });
    const controller = new AbortController();
    let first = false;
    const watching = web.watch('watch', { intervalMs: 20, signal: controller.signal, onChange: () => void (first = true) });
    for (let i = 0; i < 300 && reads < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(first).toBe(true);
    controller.abort();
    // A bound far below the request timeout: the watch must not wait the hanging read out.
    const ended = await Promise.race([watching.then(() => 'ended'), new Promise((resolve) => setTimeout(() => resolve('still waiting'), 10_000))]);
    expect(ended).toBe('ended');
  });
});
