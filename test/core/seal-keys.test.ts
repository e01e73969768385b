import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../lambda/adapters/file-store';
import { LocalKeyWrapper } from '../../lambda/adapters/local-keys';
import { SealKeyRing } from '../../lambda/core/seal-keys';
import type { KeyWrapper } from '../../lambda/ports';

const tempDir = () => mkdtemp(join(tmpdir(), 'dssss-keys-'));

describe('seal key ring', () => {
  it('creates the seal key on first use and reuses it', async () => {
    const dir = await tempDir();
    const ring = new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir));
    const first = await ring.keys();
    expect(first.seal.key).toHaveLength(32);
    expect(await ring.keys()).toBe(first);
  });

  it('a second cold start adopts the first seal key', async () => {
    const dir = await tempDir();
    const a = await new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir)).keys();
    const b = await new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir)).keys();
    expect(b.seal.id).toBe(a.seal.id);
    expect(Buffer.from(b.seal.key).equals(Buffer.from(a.seal.key))).toBe(true);
  });

  it('many concurrent cold starts converge on one seal key', async () => {
    const dir = await tempDir();
    const rings = Array.from({ length: 20 }, () => new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir)));
    const keys = await Promise.all(rings.map((r) => r.keys()));
    expect(new Set(keys.map((k) => k.seal.id)).size).toBe(1);
    expect(new Set(keys.map((k) => Buffer.from(k.seal.key).toString('hex'))).size).toBe(1);
  });

  it('does not cache a failure: the next call retries', async () => {
    const dir = await tempDir();
    const real = new LocalKeyWrapper(dir);
    let fail = true;
    const flaky: KeyWrapper = {
      generateDataKey: () => (fail ? Promise.reject(new Error('KMS down')) : real.generateDataKey()),
      unwrap: (w) => real.unwrap(w),
    };
    const ring = new SealKeyRing(new FileSecretStore(dir), flaky);
    await expect(ring.keys()).rejects.toThrow('KMS down');
    fail = false;
    expect((await ring.keys()).seal.key).toHaveLength(32);
  });

  it('refuses a seal key that the key file does not open', async () => {
    const dir = await tempDir();
    await new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir)).keys();
    const otherKeyFile = new LocalKeyWrapper(await tempDir());
    await expect(new SealKeyRing(new FileSecretStore(dir), otherKeyFile).keys()).rejects.toMatchObject({ code: 'integrity' });
  });
});
