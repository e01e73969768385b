// The seal keys, per container: a ring of KMS-wrapped keys with ids. The newest seals new
// records and tokens; every key in the ring still opens what it sealed. Each key is its own
// bookkeeping value, created conditionally, so concurrent first starts and concurrent
// rotations converge on one key: the losers re-read and adopt the winner's.

import { randomBytes } from 'node:crypto';
import { DssssError } from './errors';
import type { SealKey } from './envelope';
import { memoize, type Memo } from './memo';
import { deriveTokenKey, type TokenKey } from './token';
import type { Clock, KeyWrapper, SecretStore } from '../ports';

/** Slot 1 keeps the name the first seal key always had; later ones are numbered. */
export const SEAL_KEY_META = 'seal-key';
export const sealKeySlot = (n: number): string => (n === 1 ? SEAL_KEY_META : `${SEAL_KEY_META}-${n}`);
/** Slots read per bookkeeping call (Parameter Store's GetParameters takes 10 names). */
const SLOTS_PER_READ = 10;
/** How long a container trusts its copy of the ring before reading it again (a rotation elsewhere reaches it within this). */
export const RING_REFRESH_MS = 5 * 60 * 1000;

export interface RingKey extends SealKey {
  readonly slot: number;
  /** When it was created (ISO 8601); the first key of older deployments has none. */
  readonly created?: string | undefined;
  readonly token: TokenKey;
}

export interface RetiredKey {
  readonly slot: number;
  readonly id: string;
  readonly retired: string;
}

export interface Ring {
  /** The newest key: it seals every new record and token. */
  readonly current: RingKey;
  readonly keys: ReadonlyMap<string, RingKey>;
  /** Token keys, newest first. */
  readonly tokenKeys: readonly TokenKey[];
  readonly retired: readonly RetiredKey[];
}

interface StoredSealKey {
  v: 1;
  kid: string;
  wrapped?: string;
  created?: string;
  /** A retired slot keeps its place, without its key. */
  retired?: string;
}

type MetaStore = Pick<SecretStore, 'readMeta' | 'createMeta' | 'deleteMeta'>;

export class SealKeyRing {
  private readonly loaded: Memo<Ring>;
  private lastReload = 0;
  /** Keys this container created: no need to ask KMS for what it just generated. */
  private readonly created = new Map<string, Uint8Array>();

  constructor(
    private readonly store: MetaStore,
    private readonly wrapper: KeyWrapper,
    private readonly clock: Clock,
  ) {
    this.loaded = memoize(() => this.load(), { ms: RING_REFRESH_MS, clock });
  }

  /** The ring for this container; a failed load is not kept, so the next request retries. */
  ring(): Promise<Ring> {
    return this.loaded();
  }

  /**
   * The key a record or token names. A key this container has not seen yet (rotated in
   * another container) makes it read the ring again, at most every few seconds.
   */
  async key(kid: string): Promise<RingKey | undefined> {
    const found = (await this.ring()).keys.get(kid);
    if (found || this.clock.now() - this.lastReload < 5000) return found;
    this.lastReload = this.clock.now();
    this.loaded.reset();
    return (await this.ring()).keys.get(kid);
  }

  /** Adds a new newest key. Concurrent rotations converge: the loser adopts the winner's key. */
  async rotate(): Promise<RingKey> {
    this.loaded.reset();
    const before = await this.ring();
    const slot = Math.max(before.current.slot, ...before.retired.map((r) => r.slot)) + 1;
    const created = await this.createKey(slot);
    this.loaded.reset();
    const after = await this.ring();
    return created ? after.keys.get(created)! : after.current;
  }

  /** Removes a key from the ring: its wrapped copy is deleted and its slot marked retired. The caller has checked that nothing needs it. */
  async retire(kid: string): Promise<void> {
    this.loaded.reset();
    const ring = await this.ring();
    const key = ring.keys.get(kid);
    if (!key) throw new DssssError('not_found', `no seal key ${kid} in the ring`);
    if (key.id === ring.current.id) throw new DssssError('conflict', 'the newest seal key cannot be retired: rotate first');
    await this.store.deleteMeta(sealKeySlot(key.slot));
    const marker: StoredSealKey = { v: 1, kid, retired: new Date(this.clock.now()).toISOString() };
    await this.store.createMeta(sealKeySlot(key.slot), JSON.stringify(marker));
    this.loaded.reset();
  }

  /** Every slot as stored (wrapped keys and retirement markers), for a backup: nothing here opens without KMS. */
  async storedSlots(): Promise<Map<string, string>> {
    return new Map([...(await this.readSlots())].map(([slot, stored]) => [sealKeySlot(slot), JSON.stringify(stored)]));
  }

  private async load(): Promise<Ring> {
    let stored = await this.readSlots();
    if (stored.size === 0) {
      await this.createKey(1);
      stored = await this.readSlots();
      if (stored.size === 0) throw new DssssError('unavailable', 'seal key vanished during creation', 1);
    }
    const keys = new Map<string, RingKey>();
    const retired: RetiredKey[] = [];
    let current: RingKey | undefined;
    // Unwrapping is one KMS call per live key; a ring rarely holds more than two or three.
    const live = [...stored].filter(([, s]) => s.retired === undefined);
    const unwrapped = await Promise.all(live.map(([, s]) => this.created.get(s.kid) ?? this.wrapper.unwrap(s.wrapped!)));
    live.forEach(([slot, s], i) => {
      const key = unwrapped[i]!;
      if (key.length !== 32) throw new DssssError('integrity', 'a stored seal key has the wrong length', 60);
      const entry: RingKey = { slot, id: s.kid, key, created: s.created, token: deriveTokenKey({ id: s.kid, key }) };
      keys.set(s.kid, entry);
      if (!current || slot > current.slot) current = entry;
    });
    for (const [slot, s] of stored) if (s.retired !== undefined) retired.push({ slot, id: s.kid, retired: s.retired });
    if (!current) throw new DssssError('integrity', 'every seal key in the ring is retired', 60);
    const newestFirst = [...keys.values()].sort((a, b) => b.slot - a.slot);
    return { current, keys, tokenKeys: newestFirst.map((k) => k.token), retired };
  }

  /**
   * Every slot, in batches. Slots are created one after another, so a batch whose last slot
   * is empty ends the ring: a ring of up to 9 keys costs one read, and a cold start pays it.
   */
  private async readSlots(): Promise<Map<number, StoredSealKey>> {
    const slots = new Map<number, StoredSealKey>();
    for (let first = 1; ; first += SLOTS_PER_READ) {
      const names = Array.from({ length: SLOTS_PER_READ }, (_, i) => sealKeySlot(first + i));
      const found = await this.store.readMeta(names);
      names.forEach((name, i) => {
        const text = found.get(name);
        if (text !== undefined) slots.set(first + i, parse(text));
      });
      if (!found.has(names.at(-1)!)) return slots;
    }
  }

  /** The new key's id, or undefined when another writer created the slot first. */
  private async createKey(slot: number): Promise<string | undefined> {
    const { plaintext, wrapped } = await this.wrapper.generateDataKey();
    const kid = randomBytes(8).toString('hex');
    const value: StoredSealKey = { v: 1, kid, wrapped, created: new Date(this.clock.now()).toISOString() };
    if (await this.store.createMeta(sealKeySlot(slot), JSON.stringify(value))) {
      this.created.set(kid, plaintext);
      return kid;
    }
    plaintext.fill(0);
    return undefined;
  }
}

function parse(text: string): StoredSealKey {
  try {
    const value = JSON.parse(text) as Partial<StoredSealKey>;
    if (value.v === 1 && typeof value.kid === 'string' && (typeof value.wrapped === 'string' || typeof value.retired === 'string')) {
      return value as StoredSealKey;
    }
  } catch {
    // fall through
  }
  throw new DssssError('integrity', 'a stored seal key record is malformed', 60);
}

