import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { encodeKey, isCommitted, openSecret, sealSecret, type SealKey } from '../../lambda/core/envelope';
import { LostRace, Ledger, type NewRecord } from '../../lambda/core/ledger';
import { SealKeyRing } from '../../lambda/core/seal-keys';
import { seal } from '../../lambda/core/sealed-box';
import type { ListPage, SecretStore, StoredRecord } from '../../lambda/ports';
import { FakeClock, FakeWrapper, MemoryMeta } from './fakes';

const HOME = '111122223333';
const NAME = 'app/db';

/**
 * Records by name at positions 1, 2, ... `cas`: an append on a stale position stores
 * nothing. `ssm`: like Parameter Store's overwriting put, a stale append still lands, at the
 * next free position, and only the answer says it lost (the first create of a name is
 * conditional in both).
 */
class MemoryStore implements SecretStore {
  readonly records = new Map<string, StoredRecord[]>();
  readonly meta = new Map<string, string>();
  readonly calls = { latest: 0, history: 0, append: 0 };

  constructor(private readonly mode: 'cas' | 'ssm' = 'cas') {}

  async latest(name: string): Promise<StoredRecord | undefined> {
    this.calls.latest++;
    return this.records.get(name)?.at(-1);
  }

  async history(name: string): Promise<StoredRecord[]> {
    this.calls.history++;
    return [...(this.records.get(name) ?? [])];
  }

  async append(name: string, record: string, expectedSeq: number): Promise<number | undefined> {
    this.calls.append++;
    const list = this.records.get(name) ?? [];
    const newest = list.at(-1)?.seq ?? 0;
    if (newest === expectedSeq) {
      list.push({ record, seq: newest + 1 });
      this.records.set(name, list);
      return newest + 1;
    }
    if (this.mode === 'ssm' && expectedSeq > 0) list.push({ record, seq: newest + 1 });
    return undefined;
  }

  async purge(name: string): Promise<boolean> {
    return this.records.delete(name);
  }

  async list(prefix: string): Promise<ListPage> {
    const names = [...this.records.keys()].filter((n) => n.startsWith(prefix)).sort();
    return { entries: names.map((name) => ({ name, ...this.records.get(name)!.at(-1)! })) };
  }

  async readMeta(keys: readonly string[]): Promise<Map<string, string>> {
    return new Map(keys.filter((k) => this.meta.has(k)).map((k) => [k, this.meta.get(k)!]));
  }

  async createMeta(key: string, value: string): Promise<boolean> {
    if (this.meta.has(key)) return false;
    this.meta.set(key, value);
    return true;
  }

  async deleteMeta(key: string): Promise<void> {
    this.meta.delete(key);
  }

  /** Store a record as-is at the next position (format-1 data, or tampering outside dssss). */
  raw(name: string, record: string): number {
    const list = this.records.get(name) ?? [];
    const seq = (list.at(-1)?.seq ?? 0) + 1;
    list.push({ record, seq });
    this.records.set(name, list);
    return seq;
  }
}

function setup(mode: 'cas' | 'ssm' = 'cas') {
  const store = new MemoryStore(mode);
  const ring = new SealKeyRing(new MemoryMeta(), new FakeWrapper(), new FakeClock());
  return { store, ring, ledger: new Ledger(store, ring, HOME) };
}

const by = { account: HOME, role: 'web', principal: 'i-0123456789abcdef0' };
const put = (version: number, value: string, extra: Partial<NewRecord> = {}): NewRecord => ({
  version,
  op: 'put',
  value,
  roles: [`${HOME}:web`],
  at: `2026-11-24T00:00:0${version}.000Z`,
  by,
  ...extra,
});

/** A format-1 record as written before this wave. */
function legacyRecord(name: string, value: string, key: SealKey): string {
  const secretKey = nacl.randomBytes(32);
  const payload = { name, roles: ['web'], value, createdAt: '2025-01-01T00:00:00.000Z', createdBy: 'web i-0legacy' };
  return JSON.stringify({ v: 1, kid: key.id, key: seal(secretKey, key.key), box: seal(new TextEncoder().encode(JSON.stringify(payload)), secretKey) });
}

describe('ledger', () => {
  it('resolves a name with no records to no head at position 0', async () => {
    const { ledger } = setup();
    const resolved = await ledger.resolve(NAME);
    expect(resolved).toEqual({ name: NAME, storeSeq: 0 });
    expect(await ledger.walk(resolved)).toEqual([]);
    expect(await ledger.versions(resolved)).toEqual([]);
  });

  it('appends a chain: each record at the next position, linked to the head it was decided on', async () => {
    const { store, ring, ledger } = setup();
    const first = await ledger.append(await ledger.resolve(NAME), put(1, 'one'));
    expect(first.seq).toBe(1);
    expect(first.payload).toMatchObject({ name: NAME, seq: 1, version: 1, value: 'one' });
    expect(first.payload.prev).toBeUndefined();
    expect(first.payload.legacy).toBeUndefined();

    const second = await ledger.append(await ledger.resolve(NAME), put(2, 'two'));
    expect(second.payload.prev).toEqual({ seq: 1, key: encodeKey(first.secretKey) });
    const tombstone = await ledger.append(await ledger.resolve(NAME), { ...put(3, 'x'), op: 'delete', value: undefined });

    const resolved = await ledger.resolve(NAME);
    expect(resolved.storeSeq).toBe(3);
    expect(resolved.head?.seq).toBe(3);
    expect(resolved.head?.payload).toEqual(tombstone.payload);
    expect(resolved.head?.payload.prev?.seq).toBe(2);

    const versions = await ledger.versions(resolved);
    expect(versions.map((h) => [h.seq, h.payload.version, h.payload.op, h.payload.value])).toEqual([
      [3, 3, 'delete', undefined],
      [2, 2, 'put', 'two'],
      [1, 1, 'put', 'one'],
    ]);
    // What the store holds is sealed and committed where it stands.
    const current = (await ring.ring()).current;
    for (const stored of store.records.get(NAME)!) {
      expect(stored.record).not.toContain('one');
      expect(isCommitted(openSecret(stored.record, NAME, current, stored.seq, HOME), stored.seq)).toBe(true);
    }
  });

  it('resolves in one store read when the newest record is committed', async () => {
    const { store, ledger } = setup();
    await ledger.append(await ledger.resolve(NAME), put(1, 'one'));
    await ledger.append(await ledger.resolve(NAME), put(2, 'two'));
    store.calls.latest = 0;
    store.calls.history = 0;
    expect((await ledger.resolve(NAME)).head?.payload.value).toBe('two');
    expect(store.calls).toMatchObject({ latest: 1, history: 0 });
  });

  it('an append decided on a stale head loses its race (compare-and-set) and stores nothing', async () => {
    const { store, ledger } = setup();
    const empty = await ledger.resolve(NAME);
    await ledger.append(empty, put(1, 'winner'));
    await expect(ledger.append(empty, put(1, 'loser'))).rejects.toBeInstanceOf(LostRace);
    const base = await ledger.resolve(NAME);
    const [a, b] = await Promise.allSettled([ledger.append(base, put(2, 'a')), ledger.append(base, put(2, 'b'))]);
    expect([a.status, b.status].sort()).toEqual(['fulfilled', 'rejected']);
    expect(((a.status === 'rejected' ? a : b) as PromiseRejectedResult).reason).toBeInstanceOf(LostRace);
    expect(store.records.get(NAME)).toHaveLength(2);
    expect((await ledger.versions(await ledger.resolve(NAME))).map((h) => h.payload.value)).toEqual([a.status === 'fulfilled' ? 'a' : 'b', 'winner']);
  });

  describe('on a store where a lost append still lands (Parameter Store)', () => {
    it('skips the orphan: resolve finds the committed head below it, walk and versions read every committed version', async () => {
      const { store, ledger } = setup('ssm');
      await ledger.append(await ledger.resolve(NAME), put(1, 'one'));
      const stale = await ledger.resolve(NAME);
      await ledger.append(await ledger.resolve(NAME), put(2, 'two'));
      await expect(ledger.append(stale, put(2, 'orphan'))).rejects.toBeInstanceOf(LostRace);
      // The loser's record is in the store, at position 3, saying it belongs at 2.
      expect(store.records.get(NAME)!.map((r) => r.seq)).toEqual([1, 2, 3]);

      const resolved = await ledger.resolve(NAME);
      expect(resolved.storeSeq).toBe(3); // the next append must expect the orphan's position
      expect(resolved.head?.seq).toBe(2);
      expect(resolved.head?.payload.value).toBe('two');
      const listed = await ledger.resolveListed(NAME, (await store.list('app/')).entries[0]!);
      expect(listed.head?.seq).toBe(2);
      expect(listed.storeSeq).toBe(3);

      // The next write lands above the orphan, linked past it.
      const third = await ledger.append(resolved, put(3, 'three'));
      expect(third.seq).toBe(4);
      expect(third.payload.prev?.seq).toBe(2);
      const after = await ledger.resolve(NAME);
      expect(after.head?.seq).toBe(4);
      expect((await ledger.walk(after)).map((h) => h.seq)).toEqual([4, 2, 1]);
      const versions = await ledger.versions(after);
      expect(versions.map((h) => [h.payload.version, h.payload.value])).toEqual([
        [3, 'three'],
        [2, 'two'],
        [1, 'one'],
      ]);
      expect(versions.some((h) => h.payload.value === 'orphan')).toBe(false);
    });

    it('a lost first create leaves nothing behind', async () => {
      const { store, ledger } = setup('ssm');
      const empty = await ledger.resolve(NAME);
      await ledger.append(empty, put(1, 'first'));
      await expect(ledger.append(empty, put(1, 'second'))).rejects.toBeInstanceOf(LostRace);
      expect(store.records.get(NAME)).toHaveLength(1);
    });

    it('resolves past several orphans in a row', async () => {
      const { ledger } = setup('ssm');
      await ledger.append(await ledger.resolve(NAME), put(1, 'one'));
      const stale = await ledger.resolve(NAME);
      await ledger.append(stale, put(2, 'two'));
      for (let i = 0; i < 3; i++) await expect(ledger.append(stale, put(2, `orphan${i}`))).rejects.toBeInstanceOf(LostRace);
      const resolved = await ledger.resolve(NAME);
      expect(resolved).toMatchObject({ storeSeq: 5, head: { seq: 2 } });
      expect((await ledger.versions(resolved)).map((h) => h.payload.value)).toEqual(['two', 'one']);
    });
  });

  it('walks history across seal key rotations, even once the old key is retired', async () => {
    const { ring, ledger } = setup();
    const oldKid = (await ring.ring()).current.id;
    const first = await ledger.append(await ledger.resolve(NAME), put(1, 'one'));
    expect(first.kid).toBe(oldKid);
    const newKid = (await ring.rotate()).id;
    const second = await ledger.append(await ledger.resolve(NAME), put(2, 'two'));
    expect(second.kid).toBe(newKid);
    await ring.retire(oldKid);
    const resolved = await ledger.resolve(NAME);
    expect((await ledger.versions(resolved)).map((h) => [h.payload.value, h.kid])).toEqual([
      ['two', newKid],
      ['one', oldKid],
    ]);
  });

  it('reseal copies the head under the newest seal key: same version, value, roles, time and writer, shown once', async () => {
    const { ring, ledger } = setup();
    await ledger.append(await ledger.resolve(NAME), put(1, 'one'));
    const roleIds = { [`${HOME}:web`]: 'AROAWEB' };
    await ledger.append(await ledger.resolve(NAME), put(2, 'two', { roles: [`${HOME}:web`, '444455556666:ci'], roleIds, op: 'restore', restoredFrom: 1 }));
    const before = await ledger.resolve(NAME);
    const newKid = (await ring.rotate()).id;

    const copy = await ledger.reseal(before);
    expect(copy.seq).toBe(3);
    expect(copy.kid).toBe(newKid);
    const { prev, seq, ...kept } = copy.payload;
    const { prev: _p, seq: _s, ...original } = before.head!.payload;
    expect(kept).toEqual(original);
    expect(prev).toEqual({ seq: 2, key: encodeKey(before.head!.secretKey) });
    expect(seq).toBe(3);

    const after = await ledger.resolve(NAME);
    expect(after.head).toMatchObject({ seq: 3, kid: newKid, payload: { version: 2, value: 'two', at: before.head!.payload.at, by } });
    expect((await ledger.walk(after)).map((h) => h.seq)).toEqual([3, 2, 1]);
    const versions = await ledger.versions(after);
    expect(versions.map((h) => [h.seq, h.payload.version])).toEqual([
      [3, 2],
      [1, 1],
    ]);
    expect(versions[0]!.payload).toMatchObject({ roles: [`${HOME}:web`, '444455556666:ci'], roleIds, op: 'restore', restoredFrom: 1 });
  });

  it('reseal of a name with no head is not_found, and a stale reseal loses its race', async () => {
    const { ledger } = setup();
    await expect(ledger.reseal(await ledger.resolve(NAME))).rejects.toMatchObject({ code: 'not_found' });
    await ledger.append(await ledger.resolve(NAME), put(1, 'one'));
    const stale = await ledger.resolve(NAME);
    await ledger.append(stale, put(2, 'two'));
    await expect(ledger.reseal(stale)).rejects.toBeInstanceOf(LostRace);
  });

  it('reads format-1 history below format-2 records, and marks what it writes above it as legacy', async () => {
    const { store, ring, ledger } = setup();
    const current = (await ring.ring()).current;
    store.raw(NAME, legacyRecord(NAME, 'v1-a', current));
    store.raw(NAME, legacyRecord(NAME, 'v1-b', current));
    const legacyHead = await ledger.resolve(NAME);
    expect(legacyHead.head).toMatchObject({ seq: 2, format: 1, payload: { op: 'put', version: 2, value: 'v1-b', roles: [`${HOME}:web`] } });

    const next = await ledger.append(legacyHead, put(3, 'v2'));
    expect(next.payload.legacy).toBe(true);
    const above = await ledger.append(await ledger.resolve(NAME), put(4, 'v2-again'));
    expect(above.payload.legacy).toBe(true);

    const versions = await ledger.versions(await ledger.resolve(NAME));
    expect(versions.map((h) => [h.seq, h.format, h.payload.value])).toEqual([
      [4, 2, 'v2-again'],
      [3, 2, 'v2'],
      [2, 1, 'v1-b'],
      [1, 1, 'v1-a'],
    ]);
  });

  it('stops walking where the store no longer keeps history', async () => {
    const { store, ledger } = setup();
    for (let v = 1; v <= 3; v++) await ledger.append(await ledger.resolve(NAME), put(v, `v${v}`));
    store.records.get(NAME)!.shift(); // the store dropped position 1
    expect((await ledger.walk(await ledger.resolve(NAME))).map((h) => h.seq)).toEqual([3, 2]);
  });

  it('refuses a record copied from another name, and a broken history', async () => {
    const { store, ledger } = setup();
    await ledger.append(await ledger.resolve('app/other'), put(1, 'other'));
    store.raw(NAME, store.records.get('app/other')![0]!.record);
    await expect(ledger.resolve(NAME)).rejects.toMatchObject({ code: 'integrity' });

    const { store: s2, ledger: l2, ring: r2 } = setup();
    await l2.append(await l2.resolve(NAME), put(1, 'one'));
    await l2.append(await l2.resolve(NAME), put(2, 'two'));
    // Position 1 replaced by a record that does not open with the key position 2 holds.
    const forged = sealSecret({ ...put(1, 'forged'), name: NAME, seq: 1 }, (await r2.ring()).current).record;
    s2.records.get(NAME)![0] = { record: forged, seq: 1 };
    await expect(l2.walk(await l2.resolve(NAME))).rejects.toMatchObject({ code: 'integrity' });
  });

  it('refuses a record naming a seal key the ring does not have', async () => {
    const { store, ledger } = setup();
    const stranger: SealKey = { id: 'stranger', key: nacl.randomBytes(32) };
    store.raw(NAME, sealSecret({ ...put(1, 'x'), name: NAME, seq: 1 }, stranger).record);
    await expect(ledger.resolve(NAME)).rejects.toMatchObject({ code: 'integrity', message: expect.stringMatching(/unknown seal key/) });
  });
});
