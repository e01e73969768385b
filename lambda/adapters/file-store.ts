// SecretStore on local files: one JSON file per secret holding its versions, one file per
// bookkeeping value. One server process owns a data dir; it keeps an index in memory.
// Appends are compare-and-set under a per-name lock.

import { createHash } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DssssError } from '../core/errors';
import { memoize } from '../core/memo';
import { MAX_VERSIONS, type ListPage, type SecretStore, type StoredRecord } from '../ports';
import { assertPrivate, createFileExclusive, isMissing, writeFileAtomic } from './files';


interface SecretFile {
  name: string;
  versions: { version: number; record: string }[];
}

export class FileSecretStore implements SecretStore {
  private readonly secretsDir: string;
  private readonly metaDir: string;
  private readonly load = memoize(() => this.readAll());
  /** Secret files that do not parse or sit under the wrong name: their names answer `integrity`. */
  private readonly damaged = new Set<string>();
  /** Writes to one name run one after another. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly dataDir: string) {
    this.secretsDir = join(dataDir, 'secrets');
    this.metaDir = join(dataDir, 'meta');
  }

  async latest(name: string): Promise<StoredRecord | undefined> {
    const index = await this.load();
    this.assertIntact(name);
    const entry = index.get(name)?.versions.at(-1);
    return entry && { record: entry.record, seq: entry.version };
  }

  async history(name: string): Promise<StoredRecord[]> {
    const index = await this.load();
    this.assertIntact(name);
    return (index.get(name)?.versions ?? []).map((v) => ({ record: v.record, seq: v.version }));
  }

  /** Compare-and-set under the name's lock: lands only if the newest position is still `expectedSeq`. */
  append(name: string, record: string, expectedSeq: number): Promise<number | undefined> {
    return this.serialize(name, async (index) => {
      this.assertIntact(name);
      const current = index.get(name);
      const newest = current?.versions.at(-1)?.version ?? 0;
      if (newest !== expectedSeq) return undefined;
      const seq = newest + 1;
      const file: SecretFile = { name, versions: [...(current?.versions ?? []), { version: seq, record }].slice(-MAX_VERSIONS) };
      if (current === undefined) {
        // Another process sharing the data dir may have created it meanwhile: that one won.
        if (!(await createFileExclusive(this.pathOf(name), JSON.stringify(file)))) return undefined;
      } else {
        await writeFileAtomic(this.pathOf(name), JSON.stringify(file));
      }
      index.set(name, file);
      return seq;
    });
  }

  purge(name: string): Promise<boolean> {
    return this.serialize(name, async (index) => {
      if (!index.has(name) && !this.damaged.has(this.fileOf(name))) return false;
      await rm(this.pathOf(name), { force: true });
      index.delete(name);
      this.damaged.delete(this.fileOf(name));
      return true;
    });
  }

  async list(prefix: string, limit: number, cursor?: string): Promise<ListPage> {
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const index = await this.load();
    const names = [...index.keys()].filter((name) => name.startsWith(prefix) && (after === undefined || name > after)).sort();
    const page = names.slice(0, limit);
    const entries = page.flatMap((name) => {
      const latest = index.get(name)?.versions.at(-1);
      return latest ? [{ name, record: latest.record, seq: latest.version }] : [];
    });
    const last = page.at(-1);
    return { entries, next: names.length > limit && last !== undefined ? encodeCursor(last) : undefined };
  }

  async readMeta(keys: readonly string[]): Promise<Map<string, string>> {
    await this.assertDataDir();
    const found = new Map<string, string>();
    await Promise.all(
      keys.map(async (key) => {
        try {
          found.set(key, await readFile(join(this.metaDir, key), 'utf8'));
        } catch (err) {
          if (!isMissing(err)) throw err;
        }
      }),
    );
    return found;
  }

  async createMeta(key: string, value: string): Promise<boolean> {
    await this.assertDataDir();
    return createFileExclusive(join(this.metaDir, key), value);
  }

  async deleteMeta(key: string): Promise<void> {
    await rm(join(this.metaDir, key), { force: true });
  }

  /** The data dir and its parts are this user's alone, or nothing is read from them. */
  private readonly assertDataDir = memoize(async () => {
    for (const [path, what] of [
      [this.dataDir, 'data dir'],
      [this.secretsDir, 'secrets dir'],
      [this.metaDir, 'meta dir'],
    ] as const) {
      await assertPrivate(path, `the ${what}`);
    }
  });

  private assertIntact(name: string): void {
    if (this.damaged.has(this.fileOf(name))) {
      throw new DssssError('integrity', `the stored file of secret ${name} is damaged; restore it from a backup or delete it`, 60);
    }
  }

  private fileOf(name: string): string {
    return `${createHash('sha256').update(name).digest('hex')}.json`;
  }

  private pathOf(name: string): string {
    // Hashed file names: any valid secret name fits, and no name can steer the path.
    return join(this.secretsDir, this.fileOf(name));
  }


  private async readAll(): Promise<Map<string, SecretFile>> {
    await this.assertDataDir();
    const index = new Map<string, SecretFile>();
    let files: string[];
    try {
      files = await readdir(this.secretsDir);
    } catch (err) {
      if (isMissing(err)) return index;
      throw err;
    }
    this.damaged.clear();
    for (const file of files.filter((f) => f.endsWith('.json'))) {
      const parsed = parseSecretFile(await readFile(join(this.secretsDir, file), 'utf8'));
      // One damaged file costs its own secret, not every secret.
      if (parsed === undefined || this.fileOf(parsed.name) !== file) this.damaged.add(file);
      else index.set(parsed.name, parsed);
    }
    return index;
  }

  private serialize<T>(name: string, work: (index: Map<string, SecretFile>) => Promise<T>): Promise<T> {
    const previous = this.queues.get(name) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(async () => work(await this.load()));
    const tail = result.catch(() => undefined);
    this.queues.set(name, tail);
    void tail.then(() => {
      if (this.queues.get(name) === tail) this.queues.delete(name);
    });
    return result;
  }
}

function parseSecretFile(text: string): SecretFile | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const file = value as Partial<SecretFile> | null;
  const ok =
    typeof file?.name === 'string' &&
    Array.isArray(file.versions) &&
    file.versions.length > 0 &&
    file.versions.every((v) => Number.isSafeInteger(v?.version) && typeof v?.record === 'string');
  return ok ? (file as SecretFile) : undefined;
}

function encodeCursor(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  if (cursor.length === 0 || encodeCursor(name) !== cursor) {
    throw new DssssError('bad_request', 'invalid continuation token');
  }
  return name;
}
