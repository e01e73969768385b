// A per-container cache of sealed records and listing pages in front of the real store,
// for the reads a booting fleet repeats. Authorization is still decided on every request
// (the cache holds sealed records, not answers); this container's own writes drop what
// they touch; concurrent misses for one key share one call; `fresh` reads go to the store.

import type { Clock, ListPage, ReadOptions, SecretStore, StoredRecord } from '../ports';

interface Entry<T> {
  readonly value: Promise<T>;
  readonly expires: number;
}

/** Hit and miss counts since the container started, for metrics. */
export interface CacheCounts {
  hits: number;
  misses: number;
}

const MAX_ENTRIES = 5000;

export class CachedSecretStore implements SecretStore {
  private readonly entries = new Map<string, Entry<unknown>>();
  readonly counts: CacheCounts = { hits: 0, misses: 0 };

  constructor(
    private readonly store: SecretStore,
    private readonly ttlMs: number,
    private readonly clock: Clock,
  ) {}

  latest(name: string, options?: ReadOptions): Promise<StoredRecord | undefined> {
    return this.cached(`r:${name}`, options, () => this.store.latest(name));
  }

  list(prefix: string, limit: number, cursor?: string, options?: ReadOptions): Promise<ListPage> {
    return this.cached(`l:${prefix}\u0000${limit}\u0000${cursor ?? ''}`, options, () => this.store.list(prefix, limit, cursor));
  }

  history(name: string): Promise<StoredRecord[]> {
    return this.store.history(name);
  }

  async append(name: string, record: string, expectedSeq: number): Promise<number | undefined> {
    try {
      return await this.store.append(name, record, expectedSeq);
    } finally {
      this.forget(name);
    }
  }

  async purge(name: string): Promise<boolean> {
    try {
      return await this.store.purge(name);
    } finally {
      this.forget(name);
    }
  }

  readMeta(keys: readonly string[]): Promise<Map<string, string>> {
    return this.store.readMeta(keys);
  }

  createMeta(key: string, value: string): Promise<boolean> {
    return this.store.createMeta(key, value);
  }

  deleteMeta(key: string): Promise<void> {
    return this.store.deleteMeta(key);
  }

  /** A write to `name` drops its record and every listing page (any page may show it). */
  private forget(name: string): void {
    this.entries.delete(`r:${name}`);
    for (const key of this.entries.keys()) if (key.startsWith('l:')) this.entries.delete(key);
  }

  private cached<T>(key: string, options: ReadOptions | undefined, load: () => Promise<T>): Promise<T> {
    const now = this.clock.now();
    const hit = this.entries.get(key) as Entry<T> | undefined;
    if (!options?.fresh && hit && hit.expires > now) {
      this.counts.hits++;
      return hit.value;
    }
    this.counts.misses++;
    const value = load();
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    const entry: Entry<T> = { value, expires: now + this.ttlMs };
    this.entries.set(key, entry);
    // A failure is not kept: the next read tries again.
    value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return value;
  }
}
