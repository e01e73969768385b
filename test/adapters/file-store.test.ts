import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../lambda/adapters/file-store';
import { MAX_VERSIONS } from '../../lambda/ports';
import { LOCAL_KEY_FILE, LocalKeyWrapper } from '../../lambda/adapters/local-keys';
import { LocalRegistry, REGISTRY_DIR } from '../../lambda/adapters/local-registry';
import { DEV_CA_FILE, ensureDevCa } from '../../lambda/adapters/dev-ca-files';
import { storeContract } from '../support/store-contract';

const tempDir = () => mkdtemp(join(tmpdir(), 'dssss-store-'));

describe('file secret store', () => {
  storeContract(async () => new FileSecretStore(await tempDir()));

  it('lets exactly one of many concurrent first appends win, across store instances', async () => {
    const dir = await tempDir();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => new FileSecretStore(dir).append('race', `r${i}`, 0)));
    expect(results.filter((r) => r !== undefined)).toEqual([1]);
  });

  it('keeps the last 100 records', async () => {
    const store = new FileSecretStore(await tempDir());
    for (let i = 1; i <= MAX_VERSIONS + 5; i++) await store.append('n', `r${i}`, i - 1);
    const history = await store.history('n');
    expect(history).toHaveLength(MAX_VERSIONS);
    expect(history[0]).toEqual({ record: 'r6', seq: 6 });
  });

  it('survives a restart: a new instance reads what the old one wrote', async () => {
    const dir = await tempDir();
    await new FileSecretStore(dir).append('p/q', 'r1', 0);
    expect(await new FileSecretStore(dir).latest('p/q')).toEqual({ record: 'r1', seq: 1 });
  });

  it('writes its files readable by the owner only', async () => {
    const dir = await tempDir();
    await new FileSecretStore(dir).append('m', 'r', 0);
    const [file] = await readdir(join(dir, 'secrets'));
    expect((await stat(join(dir, 'secrets', file!))).mode & 0o777).toBe(0o600);
  });
});

describe('a data dir others can reach (finding 7)', () => {
  it('refuses a data dir open to other users, and a key or CA planted readable by them', async () => {
    const open = await tempDir();
    await chmod(open, 0o777);
    await expect(new FileSecretStore(open).latest('x')).rejects.toMatchObject({ code: 'misconfigured', message: expect.stringMatching(/chmod 700/) });
    await expect(new LocalKeyWrapper(open).generateDataKey()).rejects.toMatchObject({ code: 'misconfigured' });
    await expect(ensureDevCa(open)).rejects.toMatchObject({ code: 'misconfigured' });

    const planted = await tempDir();
    await writeFile(join(planted, LOCAL_KEY_FILE), Buffer.alloc(32, 7).toString('base64') + '\n', { mode: 0o644 });
    await chmod(join(planted, LOCAL_KEY_FILE), 0o644);
    await expect(new LocalKeyWrapper(planted).generateDataKey()).rejects.toMatchObject({ code: 'misconfigured', message: expect.stringMatching(/local KMS key/) });
    await writeFile(join(planted, DEV_CA_FILE), '{}', { mode: 0o644 });
    await chmod(join(planted, DEV_CA_FILE), 0o644);
    await expect(ensureDevCa(planted)).rejects.toMatchObject({ code: 'misconfigured', message: expect.stringMatching(/development CA/) });
  });

  it('refuses an instance registration others could have planted, and a registry open to them', async () => {
    const dir = await tempDir();
    const registry = new LocalRegistry(dir);
    const identity = { instanceId: 'i-0123456789abcdef0', accountId: '111122223333', region: 'us-east-1' };
    await registry.register(identity.instanceId, identity.accountId, 'web');
    expect(await registry.resolveRole(identity)).toEqual({ role: 'web' });
    await chmod(join(dir, REGISTRY_DIR, `${identity.instanceId}.json`), 0o666);
    await expect(registry.resolveRole(identity)).rejects.toMatchObject({ code: 'misconfigured', message: expect.stringMatching(/instance registration/) });
    await chmod(join(dir, REGISTRY_DIR, `${identity.instanceId}.json`), 0o600);
    await chmod(join(dir, REGISTRY_DIR), 0o777);
    await expect(registry.resolveRole(identity)).rejects.toMatchObject({ code: 'misconfigured', message: expect.stringMatching(/instance registry/) });
  });

  it('refuses a key that is a symbolic link to someone else\'s file', async () => {
    const dir = await tempDir();
    const elsewhere = join(await tempDir(), 'key');
    await writeFile(elsewhere, Buffer.alloc(32, 7).toString('base64'), { mode: 0o600 });
    await symlink(elsewhere, join(dir, LOCAL_KEY_FILE));
    await expect(new LocalKeyWrapper(dir).generateDataKey()).rejects.toMatchObject({ code: 'misconfigured', message: expect.stringMatching(/symbolic link/) });
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
    expect(await registry.resolveRole(identity)).toEqual({ role: 'web' });
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
    await before.append('app/a', 'record-a', 0);
    await before.append('app/b', 'record-b', 0);
    const file = (name: string) => join(dir, 'secrets', `${createHash('sha256').update(name).digest('hex')}.json`);
    await writeFile(file('app/a'), '{"name": "app/a", "versi'); // truncated
    // A well-formed file under another name's hash is damaged too.
    await writeFile(file('app/c'), JSON.stringify({ name: 'app/b', versions: [{ version: 1, record: 'x' }] }));

    const after = new FileSecretStore(dir);
    await expect(after.latest('app/a')).rejects.toMatchObject({ code: 'integrity', status: 503 });
    await expect(after.append('app/a', 'again', 0)).rejects.toMatchObject({ code: 'integrity' });
    await expect(after.latest('app/c')).rejects.toMatchObject({ code: 'integrity' });
    expect(await after.latest('app/b')).toEqual({ record: 'record-b', seq: 1 });
    expect((await after.list('app/', 10)).entries.map((e) => e.name)).toEqual(['app/b']);
  });
});
