import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSecretStore, MAX_VERSIONS } from '../../lambda/adapters/file-store';
import { LOCAL_KEY_FILE, LocalKeyWrapper } from '../../lambda/adapters/local-keys';
import { LocalRegistry } from '../../lambda/adapters/local-registry';

const tempDir = () => mkdtemp(join(tmpdir(), 'dssss-store-'));

describe('file secret store', () => {
  it('creates version 1, adds versions on update, and reads any version', async () => {
    const store = new FileSecretStore(await tempDir());
    expect(await store.create('a/b', 'r1')).toBe(1);
    expect(await store.update('a/b', 'r2')).toBe(2);
    expect(await store.read('a/b')).toEqual({ record: 'r2', version: 2 });
    expect(await store.read('a/b', 1)).toEqual({ record: 'r1', version: 1 });
    expect(await store.read('a/b', 3)).toBeUndefined();
    expect(await store.read('a/c')).toBeUndefined();
  });

  it('refuses to create a name that exists', async () => {
    const store = new FileSecretStore(await tempDir());
    await store.create('x', 'r1');
    await expect(store.create('x', 'r2')).rejects.toMatchObject({ code: 'conflict' });
    expect(await store.read('x')).toEqual({ record: 'r1', version: 1 });
  });

  it('lets exactly one of many concurrent creates win, across store instances', async () => {
    const dir = await tempDir();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => new FileSecretStore(dir).create('race', `r${i}`)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
  });

  it('keeps every acknowledged concurrent update as its own version', async () => {
    const store = new FileSecretStore(await tempDir());
    await store.create('n', 'r0');
    const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => store.update('n', `r${i + 1}`)));
    expect(new Set(versions).size).toBe(20);
    for (const v of versions) expect((await store.read('n', v))?.version).toBe(v);
  });

  it('keeps the last 100 versions', async () => {
    const store = new FileSecretStore(await tempDir());
    await store.create('n', 'r1');
    for (let i = 2; i <= MAX_VERSIONS + 5; i++) await store.update('n', `r${i}`);
    expect(await store.read('n', 5)).toBeUndefined();
    expect(await store.read('n', 6)).toEqual({ record: 'r6', version: 6 });
  });

  it('survives a restart: a new instance reads what the old one wrote', async () => {
    const dir = await tempDir();
    await new FileSecretStore(dir).create('p/q', 'r1');
    expect(await new FileSecretStore(dir).read('p/q')).toEqual({ record: 'r1', version: 1 });
  });

  it('deletes every version', async () => {
    const store = new FileSecretStore(await tempDir());
    await store.create('d', 'r1');
    expect(await store.delete('d')).toBe(true);
    expect(await store.read('d')).toBeUndefined();
    expect(await store.delete('d')).toBe(false);
    await store.create('d', 'again');
    expect(await store.read('d')).toEqual({ record: 'again', version: 1 });
  });

  it('lists by prefix in order, one page at a time', async () => {
    const store = new FileSecretStore(await tempDir());
    for (const name of ['app/c', 'app/a', 'other/x', 'app/b', 'apple']) await store.create(name, `r-${name}`);
    const first = await store.list('app/', 2);
    expect(first.entries.map((e) => e.name)).toEqual(['app/a', 'app/b']);
    expect(first.entries[0]?.record).toBe('r-app/a');
    const second = await store.list('app/', 2, first.next);
    expect(second.entries.map((e) => e.name)).toEqual(['app/c']);
    expect(second.next).toBeUndefined();
    await expect(store.list('', 2, '!!')).rejects.toMatchObject({ code: 'bad_request' });
  });

  it('creates bookkeeping values once', async () => {
    const store = new FileSecretStore(await tempDir());
    expect(await store.createMeta('seal-key', 'one')).toBe(true);
    expect(await store.createMeta('seal-key', 'two')).toBe(false);
    expect(await store.readMeta('seal-key')).toBe('one');
    expect(await store.readMeta('absent')).toBeUndefined();
  });

  it('writes its files readable by the owner only', async () => {
    const dir = await tempDir();
    await new FileSecretStore(dir).create('m', 'r');
    const [file] = await readdir(join(dir, 'secrets'));
    expect((await stat(join(dir, 'secrets', file!))).mode & 0o777).toBe(0o600);
  });
});

describe('local key file', () => {
  it('is created with mode 0600 and wraps data keys it alone can unwrap', async () => {
    const dir = await tempDir();
    const wrapper = new LocalKeyWrapper(dir);
    const { plaintext, wrapped } = await wrapper.generateDataKey();
    expect((await stat(join(dir, LOCAL_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect(await wrapper.unwrap(wrapped)).toEqual(plaintext);
    expect(wrapped).not.toContain(Buffer.from(plaintext).toString('base64'));
    await expect(new LocalKeyWrapper(await tempDir()).unwrap(wrapped)).rejects.toMatchObject({ code: 'integrity' });
    expect((await readFile(join(dir, LOCAL_KEY_FILE), 'utf8')).trim()).toHaveLength(44);
  });
});

describe('local instance registry', () => {
  const identity = { instanceId: 'i-0123456789abcdef0', accountId: '111122223333', region: 'us-east-1' };

  it('resolves a registered instance to its role', async () => {
    const registry = new LocalRegistry(await tempDir());
    await registry.register(identity.instanceId, identity.accountId, 'web');
    expect(await registry.resolveRole(identity)).toBe('web');
  });

  it('refuses an unregistered instance', async () => {
    const registry = new LocalRegistry(await tempDir());
    await expect(registry.resolveRole(identity)).rejects.toMatchObject({ code: 'invalid_credentials' });
  });

  it('refuses an instance whose document names another account', async () => {
    const registry = new LocalRegistry(await tempDir());
    await registry.register(identity.instanceId, '444455556666', 'web');
    await expect(registry.resolveRole(identity)).rejects.toMatchObject({ code: 'invalid_credentials', message: expect.stringMatching(/account/) });
  });

  it('refuses to register malformed ids, accounts and roles', async () => {
    const registry = new LocalRegistry(await tempDir());
    await expect(registry.register('../../etc', '111122223333', 'web')).rejects.toMatchObject({ code: 'bad_request' });
    await expect(registry.register(identity.instanceId, '1234', 'web')).rejects.toMatchObject({ code: 'bad_request' });
    await expect(registry.register(identity.instanceId, '111122223333', 'no spaces')).rejects.toMatchObject({ code: 'bad_request' });
  });
});

describe('FileSecretStore with a damaged file', () => {
  it('answers integrity for that secret alone; every other secret stays readable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dssss-damaged-'));
    const before = new FileSecretStore(dir);
    await before.create('app/a', 'record-a');
    await before.create('app/b', 'record-b');
    const file = (name: string) => join(dir, 'secrets', `${createHash('sha256').update(name).digest('hex')}.json`);
    await writeFile(file('app/a'), '{"name": "app/a", "versi'); // truncated
    // A well-formed file under another name's hash is damaged too.
    await writeFile(file('app/c'), JSON.stringify({ name: 'app/b', versions: [{ version: 1, record: 'x' }] }));

    const after = new FileSecretStore(dir);
    await expect(after.read('app/a')).rejects.toMatchObject({ code: 'integrity', status: 503 });
    await expect(after.create('app/a', 'again')).rejects.toMatchObject({ code: 'integrity' });
    await expect(after.read('app/c')).rejects.toMatchObject({ code: 'integrity' });
    expect(await after.read('app/b')).toEqual({ record: 'record-b', version: 1 });
    expect((await after.list('app/', 10)).entries.map((e) => e.name)).toEqual(['app/b']);
  });
});
