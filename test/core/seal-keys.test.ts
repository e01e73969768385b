import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileSecretStore } from '../../lambda/adapters/file-store';
import { LocalKeyWrapper } from '../../lambda/adapters/local-keys';
import { openSecret, sealSecret, type SecretPayload } from '../../lambda/core/envelope';
import { RING_REFRESH_MS, SEAL_KEY_META, SealKeyRing, sealKeySlot } from '../../lambda/core/seal-keys';
import { issueToken, verifyToken } from '../../lambda/core/token';
import type { KeyWrapper } from '../../lambda/ports';
import { FakeClock, FakeWrapper, MemoryMeta } from './fakes';

const tempDir = () => mkdtemp(join(tmpdir(), 'dssss-keys-'));
const hex = (key: Uint8Array) => Buffer.from(key).toString('hex');

function setup() {
  const meta = new MemoryMeta();
  const wrapper = new FakeWrapper();
  const clock = new FakeClock();
  const ring = () => new SealKeyRing(meta, wrapper, clock);
  return { meta, wrapper, clock, ring };
}

const payload: SecretPayload = {
  name: 'app/x',
  version: 1,
  seq: 1,
  op: 'put',
  value: 'v',
  roles: ['111122223333:web'],
  at: '2026-11-24T00:00:00.000Z',
  by: { account: '111122223333', role: 'web', principal: 'i-1' },
};

describe('seal key slots', () => {
  it('keeps the first key under the name it always had; later ones are numbered', () => {
    expect(SEAL_KEY_META).toBe('seal-key');
    expect(sealKeySlot(1)).toBe('seal-key');
    expect(sealKeySlot(2)).toBe('seal-key-2');
    expect(sealKeySlot(11)).toBe('seal-key-11');
  });
});

describe('seal key ring', () => {
  it('creates slot seal-key on first use and reuses the loaded ring', async () => {
    const { meta, wrapper, ring: make } = setup();
    const ring = make();
    const first = await ring.ring();
    expect(first.current.key).toHaveLength(32);
    expect(first.current.slot).toBe(1);
    expect([...meta.values.keys()]).toEqual(['seal-key']);
    expect(JSON.parse(meta.values.get('seal-key')!)).toMatchObject({ v: 1, kid: first.current.id, created: expect.any(String) });
    expect(first.keys.size).toBe(1);
    expect(first.tokenKeys.map((k) => k.kid)).toEqual([first.current.id]);
    expect(first.retired).toEqual([]);
    expect(await ring.ring()).toBe(first);
    // The key it generated is not asked of KMS again.
    expect(wrapper.calls).toEqual({ generate: 1, unwrap: 0 });
  });

  it('shares one load among concurrent callers of one ring', async () => {
    const { meta, wrapper, ring: make } = setup();
    const ring = make();
    const rings = await Promise.all(Array.from({ length: 10 }, () => ring.ring()));
    expect(new Set(rings).size).toBe(1);
    expect(wrapper.calls.generate).toBe(1);
    expect(meta.calls.create).toBe(1);
  });

  it('many concurrent first loads (one per container) create slot seal-key exactly once and converge on one kid', async () => {
    const { meta, ring: make } = setup();
    const containers = Array.from({ length: 20 }, make);
    const rings = await Promise.all(containers.map((r) => r.ring()));
    expect(meta.calls.created).toBe(1);
    expect(meta.calls.create).toBeGreaterThan(1); // they really raced
    expect([...meta.values.keys()]).toEqual(['seal-key']);
    expect(new Set(rings.map((r) => r.current.id)).size).toBe(1);
    expect(new Set(rings.map((r) => hex(r.current.key))).size).toBe(1);
    expect(rings[0]!.current.id).toBe((JSON.parse(meta.values.get('seal-key')!) as { kid: string }).kid);
  });

  it('a later cold start adopts the stored key by unwrapping it', async () => {
    const { wrapper, ring: make } = setup();
    const a = await make().ring();
    const b = await make().ring();
    expect(b.current.id).toBe(a.current.id);
    expect(hex(b.current.key)).toBe(hex(a.current.key));
    expect(hex(b.current.token.key)).toBe(hex(a.current.token.key));
    expect(wrapper.calls).toEqual({ generate: 1, unwrap: 1 });
  });

  it('rotate adds slot seal-key-2; the old key stays in keys and tokenKeys, newest first', async () => {
    const { meta, ring: make } = setup();
    const ring = make();
    const old = (await ring.ring()).current;
    const sealedBefore = sealSecret(payload, old).record;
    const tokenBefore = issueToken({ account: '1', role: 'web', principal: 'i-1', method: 'ec2', iat: 100, exp: 200, kid: old.id }, old.token);

    const rotated = await ring.rotate();
    expect(rotated.id).not.toBe(old.id);
    expect(rotated.slot).toBe(2);
    expect([...meta.values.keys()].sort()).toEqual(['seal-key', 'seal-key-2']);
    expect((JSON.parse(meta.values.get('seal-key-2')!) as { kid: string }).kid).toBe(rotated.id);

    const after = await ring.ring();
    expect(after.current.id).toBe(rotated.id);
    expect([...after.keys.keys()].sort()).toEqual([old.id, rotated.id].sort());
    expect(after.tokenKeys.map((k) => k.kid)).toEqual([rotated.id, old.id]);
    // What the old key sealed still opens; old tokens still verify.
    const oldAgain = (await ring.key(old.id))!;
    expect(openSecret(sealedBefore, 'app/x', oldAgain, 1, '111122223333').payload.value).toBe('v');
    expect(verifyToken(tokenBefore, after.tokenKeys, 150).kid).toBe(old.id);

    // A third rotation: slot 3, newest first throughout.
    const third = await ring.rotate();
    expect(third.slot).toBe(3);
    expect((await ring.ring()).tokenKeys.map((k) => k.kid)).toEqual([third.id, rotated.id, old.id]);
  });

  it('concurrent rotations from two containers converge on one new key', async () => {
    const { meta, ring: make } = setup();
    const a = make();
    const b = make();
    const first = (await a.ring()).current;
    await b.ring();
    const attempts = meta.calls.create;
    const [ka, kb] = await Promise.all([a.rotate(), b.rotate()]);
    expect(meta.calls.create - attempts).toBe(2); // both tried slot 2...
    expect(meta.calls.created).toBe(2); // ...one made it (the first key, and this one)
    expect(ka.id).toBe(kb.id);
    expect(hex(ka.key)).toBe(hex(kb.key));
    expect(ka.id).not.toBe(first.id);
    expect([...meta.values.keys()].sort()).toEqual(['seal-key', 'seal-key-2']);
    expect((await a.ring()).current.id).toBe(ka.id);
    expect((await b.ring()).current.id).toBe(ka.id);
    expect((await b.ring()).keys.has(first.id)).toBe(true);
  });

  it('retire refuses the current key and unknown ids', async () => {
    const { meta, ring: make } = setup();
    const ring = make();
    const only = (await ring.ring()).current;
    await expect(ring.retire(only.id)).rejects.toMatchObject({ code: 'conflict' });
    await expect(ring.retire('no-such-kid')).rejects.toMatchObject({ code: 'not_found' });
    expect(meta.calls.delete).toBe(0);
    expect((await ring.ring()).keys.has(only.id)).toBe(true);
  });

  it('retire of an old key removes it from keys and tokenKeys and records it in retired, for every container', async () => {
    const { meta, wrapper, clock, ring: make } = setup();
    const ring = make();
    const old = (await ring.ring()).current;
    const current = await ring.rotate();
    await ring.retire(old.id);

    const after = await ring.ring();
    expect(after.keys.has(old.id)).toBe(false);
    expect(after.current.id).toBe(current.id);
    expect(after.tokenKeys.map((k) => k.kid)).toEqual([current.id]);
    expect(after.retired).toEqual([{ slot: 1, id: old.id, retired: new Date(clock.now()).toISOString() }]);
    // The slot keeps its place, without its wrapped key.
    const marker = JSON.parse(meta.values.get('seal-key')!) as Record<string, unknown>;
    expect(marker).toMatchObject({ v: 1, kid: old.id });
    expect(marker.wrapped).toBeUndefined();
    expect(await ring.key(old.id)).toBeUndefined();

    // Another container: sees it retired, never unwraps it.
    const unwrapsBefore = wrapper.calls.unwrap;
    const elsewhere = await make().ring();
    expect(elsewhere.keys.has(old.id)).toBe(false);
    expect(elsewhere.retired.map((r) => r.id)).toEqual([old.id]);
    expect(wrapper.calls.unwrap - unwrapsBefore).toBe(1);

    // The next rotation does not reuse the retired slot's number... nor the current one.
    expect((await ring.rotate()).slot).toBe(3);
  });

  it('a key rotated in container A reaches container B through key(kid), before the ring refresh', async () => {
    const { meta, clock, ring: make } = setup();
    const a = make();
    const b = make();
    const first = (await b.ring()).current;
    clock.advance(60_000);
    const rotated = await a.rotate();
    // B's cached ring still says the old key is current...
    expect((await b.ring()).current.id).toBe(first.id);
    // ...until it meets a record or token naming the new one.
    const learnt = await b.key(rotated.id);
    expect(learnt?.id).toBe(rotated.id);
    expect(hex(learnt!.key)).toBe(hex(rotated.key));
    expect((await b.ring()).current.id).toBe(rotated.id);
    // A known id reads nothing.
    const reads = meta.calls.read;
    expect((await b.key(first.id))?.id).toBe(first.id);
    expect(meta.calls.read).toBe(reads);
  });

  it('an unknown kid reloads at most every few seconds', async () => {
    const { meta, clock, ring: make } = setup();
    const ring = make();
    await ring.ring();
    clock.advance(60_000);
    let reads = meta.calls.read;
    expect(await ring.key('forged')).toBeUndefined();
    expect(meta.calls.read).toBeGreaterThan(reads);
    reads = meta.calls.read;
    clock.advance(1000);
    expect(await ring.key('forged')).toBeUndefined();
    expect(meta.calls.read).toBe(reads);
    clock.advance(5000);
    expect(await ring.key('forged')).toBeUndefined();
    expect(meta.calls.read).toBeGreaterThan(reads);
  });

  it('reads the ring again once it is older than RING_REFRESH_MS', async () => {
    const { clock, ring: make } = setup();
    const a = make();
    const b = make();
    const loaded = await b.ring();
    const rotated = await a.rotate();
    clock.advance(RING_REFRESH_MS - 1);
    expect(await b.ring()).toBe(loaded);
    clock.advance(1);
    expect((await b.ring()).current.id).toBe(rotated.id);
  });

  it('reads rings of more than one batch of slots', async () => {
    const { ring: make } = setup();
    const ring = make();
    await ring.ring();
    for (let i = 0; i < 11; i++) await ring.rotate();
    const loaded = await make().ring();
    expect(loaded.current.slot).toBe(12);
    expect(loaded.keys.size).toBe(12);
    expect(loaded.tokenKeys.map((k) => k.kid)).toEqual([...loaded.keys.values()].sort((x, y) => y.slot - x.slot).map((k) => k.id));
  });

  it('a cold start reads a ring of fewer than 10 keys in one bookkeeping read, and one more per full batch', async () => {
    const { meta, ring: make } = setup();
    const ring = make();
    await ring.ring();
    await ring.rotate();
    meta.calls.read = 0;
    expect((await make().ring()).keys.size).toBe(2);
    expect(meta.calls.read).toBe(1);
    for (let i = 0; i < 8; i++) await ring.rotate();
    meta.calls.read = 0;
    expect((await make().ring()).keys.size).toBe(10);
    expect(meta.calls.read).toBe(2);
  });

  it('refuses a malformed stored key, a key of the wrong length, and a ring with every key retired', async () => {
    const malformed = setup();
    malformed.meta.values.set('seal-key', '{"v":1,"kid":"x"}');
    await expect(malformed.ring().ring()).rejects.toMatchObject({ code: 'integrity' });
    malformed.meta.values.set('seal-key', 'not json');
    await expect(malformed.ring().ring()).rejects.toMatchObject({ code: 'integrity' });

    const short = setup();
    const shortWrapper: KeyWrapper = { generateDataKey: () => short.wrapper.generateDataKey(), unwrap: async () => new Uint8Array(16) };
    await short.ring().ring();
    await expect(new SealKeyRing(short.meta, shortWrapper, short.clock).ring()).rejects.toMatchObject({ code: 'integrity' });

    const allRetired = setup();
    allRetired.meta.values.set('seal-key', JSON.stringify({ v: 1, kid: 'gone', retired: '2026-01-01T00:00:00.000Z' }));
    await expect(allRetired.ring().ring()).rejects.toMatchObject({ code: 'integrity' });
  });

  it('does not keep a failure: the next call retries', async () => {
    const { meta, clock } = setup();
    const real = new FakeWrapper();
    let fail = true;
    const flaky: KeyWrapper = {
      generateDataKey: () => (fail ? Promise.reject(new Error('KMS down')) : real.generateDataKey()),
      unwrap: (w) => real.unwrap(w),
    };
    const ring = new SealKeyRing(meta, flaky, clock);
    await expect(ring.ring()).rejects.toThrow('KMS down');
    expect(meta.values.size).toBe(0);
    fail = false;
    expect((await ring.ring()).current.key).toHaveLength(32);
  });
});

describe('seal key ring on the file store', () => {
  it('a second cold start adopts the first seal key', async () => {
    const dir = await tempDir();
    const clock = new FakeClock();
    const a = await new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir), clock).ring();
    const b = await new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir), clock).ring();
    expect(b.current.id).toBe(a.current.id);
    expect(hex(b.current.key)).toBe(hex(a.current.key));
  });

  it('many concurrent cold starts converge on one seal key', async () => {
    const dir = await tempDir();
    const clock = new FakeClock();
    const rings = Array.from({ length: 20 }, () => new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir), clock));
    const loaded = await Promise.all(rings.map((r) => r.ring()));
    expect(new Set(loaded.map((r) => r.current.id)).size).toBe(1);
    expect(new Set(loaded.map((r) => hex(r.current.key))).size).toBe(1);
  });

  it('rotates and retires across restarts', async () => {
    const dir = await tempDir();
    const clock = new FakeClock();
    const ring = new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir), clock);
    const old = (await ring.ring()).current;
    const current = await ring.rotate();
    await ring.retire(old.id);
    const restarted = await new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir), clock).ring();
    expect(restarted.current.id).toBe(current.id);
    expect(restarted.keys.has(old.id)).toBe(false);
    expect(restarted.retired.map((r) => r.id)).toEqual([old.id]);
  });

  it('refuses a seal key that the key file does not open', async () => {
    const dir = await tempDir();
    const clock = new FakeClock();
    await new SealKeyRing(new FileSecretStore(dir), new LocalKeyWrapper(dir), clock).ring();
    const otherKeyFile = new LocalKeyWrapper(await tempDir());
    await expect(new SealKeyRing(new FileSecretStore(dir), otherKeyFile, clock).ring()).rejects.toMatchObject({ code: 'integrity' });
  });
});
